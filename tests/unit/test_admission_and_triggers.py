"""The webhook's requester decision, its serving certificate, and triggered analyses (pure)."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509

from mmif_operator.admission import certs
from mmif_operator.admission.requester import Denied, decide
from mmif_operator.kinds.analysisjob import triggers

ALICE = {
    "username": "alice",
    "uid": "u-1",
    "groups": ["visit-a1", "system:authenticated"],
    "extra": {"scopes": ["read"]},
}
OPERATOR = "system:serviceaccount:mmif-system:mmif-operator"
NOW = datetime.datetime(2026, 11, 23, 12, tzinfo=datetime.UTC)


def test_create_records_the_requesting_user_with_groups_and_extra():
    assert decide("CREATE", "PipelineRun", ALICE, {"pipelineRef": {"name": "p"}}, None, OPERATOR) == ALICE


def test_create_with_a_requester_written_by_hand_is_denied_naming_the_field():
    with pytest.raises(Denied, match=r"spec.requester is set by the API server .*'alice'"):
        decide("CREATE", "PipelineRun", ALICE, {"requester": {"username": "bob"}}, None, OPERATOR)


def test_only_the_operator_may_create_an_analysis_job_carrying_a_requester():
    assert (
        decide("CREATE", "AnalysisJob", {"username": OPERATOR}, {"requester": ALICE}, None, OPERATOR) is None
    )
    with pytest.raises(Denied):
        decide("CREATE", "AnalysisJob", ALICE, {"requester": ALICE}, None, OPERATOR)


@pytest.mark.parametrize("new, word", [({"requester": {"username": "bob"}}, "changed"), ({}, "removed")])
def test_update_changing_or_removing_the_requester_is_denied(new, word):
    with pytest.raises(Denied, match=f"cannot be {word}"):
        decide("UPDATE", "PipelineRun", ALICE, new, {"requester": ALICE}, OPERATOR)
    assert (
        decide("UPDATE", "PipelineRun", ALICE, {"requester": ALICE}, {"requester": ALICE}, OPERATOR) is None
    )


def test_the_serving_certificate_covers_the_service_names_and_chains_to_its_ca():
    names = certs.service_names("mmif-operator-webhook", "mmif-system")
    cert = certs.generate(names, NOW)
    assert certs.usable(cert, names, NOW)
    parsed = x509.load_pem_x509_certificate(cert.cert_pem)
    parsed.verify_directly_issued_by(x509.load_pem_x509_certificate(cert.ca_pem))
    assert certs.ServingCert.from_secret_data(cert.to_secret_data()) == cert
    assert not certs.usable(cert, ["other.svc"], NOW)
    assert not certs.usable(cert, names, NOW + datetime.timedelta(days=certs.CERT_DAYS - 10))
    assert not certs.usable(certs.ServingCert.from_secret_data({}), names, NOW)


def run(analyses=("seg",), decided=(), requester=ALICE):
    spec = {"pipelineRef": {"name": "p"}, "workspace": {"claimName": "media"}}
    if requester:
        spec["requester"] = requester
    return {
        "metadata": {"name": "run-1", "namespace": "a1", "uid": "run-uid", "generation": 1},
        "spec": spec,
        "status": {
            "pipelineSpec": {
                "steps": [{"name": "asr", "image": "x"}],
                "analyses": [{"name": a, "trigger": "Live", "app": {"image": "y"}} for a in analyses],
            },
            "analyses": [{"name": d, "state": "Created"} for d in decided],
            "conditions": [
                {
                    "type": "Succeeded",
                    "status": "Unknown",
                    "reason": "Running",
                    "message": "",
                    "lastTransitionTime": "2026-11-23T11:00:00Z",
                }
            ],
        },
    }


def test_pending_templates_are_those_not_decided_yet():
    assert [t["name"] for t in triggers.pending_templates(run(("seg", "ner"), decided=("seg",)))] == ["ner"]


def test_the_access_review_asks_for_create_analysisjobs_as_the_requester():
    review = triggers.access_review(ALICE, "a1")
    assert review["spec"] == {
        "user": "alice",
        "uid": "u-1",
        "groups": ALICE["groups"],
        "extra": ALICE["extra"],
        "resourceAttributes": {
            "namespace": "a1",
            "verb": "create",
            "group": "mmif.dev",
            "resource": "analysisjobs",
        },
    }


def test_an_allowed_analysis_becomes_an_analysis_job_owned_by_the_run_for_its_requester():
    r = run()
    [template] = triggers.pending_templates(r)
    decision = triggers.decide(template, r, {"status": {"allowed": True}})
    assert decision.allowed and decision.analysis_job == "run-1-seg"
    body = triggers.analysis_job(r, template)
    assert body["metadata"]["name"] == "run-1-seg"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "run-uid"
    assert body["spec"] == {
        "runRef": {"name": "run-1"},
        "app": {"image": "y"},
        "trigger": "Live",
        "parallelism": 4,
        "requester": ALICE,
    }
    patch = triggers.status_patch(r, [decision], NOW)
    assert patch["analyses"] == [{"name": "seg", "state": "Created", "analysisJob": "run-1-seg"}]
    assert {c["type"]: c["status"] for c in patch["conditions"]} == {
        "Succeeded": "Unknown",
        "AnalysesCreated": "True",
    }


def test_a_refused_or_unrecorded_requester_gets_analysis_not_authorized():
    r = run()
    [template] = triggers.pending_templates(r)
    refused = triggers.decide(template, r, {"status": {"allowed": False, "reason": ""}})
    assert (
        not refused.allowed and "user 'alice' may not create analysisjobs in namespace a1" in refused.message
    )
    patch = triggers.status_patch(r, [refused], NOW)
    cond = next(c for c in patch["conditions"] if c["type"] == "AnalysesCreated")
    assert (
        cond["status"] == "False" and cond["reason"] == "AnalysisNotAuthorized" and "seg" in cond["message"]
    )
    assert patch["analyses"][0]["state"] == "NotAuthorized"
    unrecorded = triggers.decide(template, run(requester=None), None)
    assert not unrecorded.allowed and "no recorded requester" in unrecorded.message


def test_groups_beyond_64_are_kept_compressed_and_every_one_reaches_the_access_review():
    from mmif_operator.core.requester import MAX_GROUPS, Requester, all_groups

    groups = [f"cn=team-{i:03d},ou=groups,dc=example,dc=org" for i in range(100)] + ["system:authenticated"]
    user = {"username": "dana", "groups": groups}
    recorded = decide("CREATE", "PipelineRun", user, {}, None, OPERATOR)
    assert recorded["groups"] == groups[:MAX_GROUPS]
    assert all_groups(recorded) == groups
    Requester.model_validate(recorded)  # within the CRD's bounds
    review = triggers.access_review(recorded, "a1")
    assert review["spec"]["groups"] == groups and review["spec"]["user"] == "dana"
    assert Requester.model_validate(recorded).to_user_info()["groups"] == groups
    # an update that leaves the recorded requester alone is fine; changing moreGroups is not
    assert (
        decide("UPDATE", "PipelineRun", user, {"requester": recorded}, {"requester": recorded}, OPERATOR)
        is None
    )
    with pytest.raises(Denied, match="cannot be changed"):
        decide(
            "UPDATE",
            "PipelineRun",
            user,
            {"requester": {**recorded, "moreGroups": "eJwDAAAAAAE="}},
            {"requester": recorded},
            OPERATOR,
        )
    # 64 groups or fewer: no moreGroups at all
    assert "moreGroups" not in decide(
        "CREATE", "PipelineRun", {"username": "e", "groups": groups[:64]}, {}, None, OPERATOR
    )


def test_a_user_whose_groups_do_not_fit_even_compressed_is_refused_naming_the_sizes():
    import os

    from mmif_operator.core.requester import MAX_MORE_GROUPS_CHARS

    groups = [os.urandom(200).hex() for _ in range(200)]  # random names barely compress
    with pytest.raises(
        Denied,
        match=rf"the user's 200 groups do not fit: the 136 beyond the first 64 take "
        rf"\d+ characters compressed, more than the {MAX_MORE_GROUPS_CHARS}",
    ):
        decide("CREATE", "PipelineRun", {"username": "f", "groups": groups}, {}, None, OPERATOR)


def test_an_unreadable_more_groups_falls_back_to_the_verbatim_groups_never_more():
    review = triggers.access_review({"username": "g", "groups": ["a"], "moreGroups": "!!"}, "a1")
    assert review["spec"]["groups"] == ["a"]
