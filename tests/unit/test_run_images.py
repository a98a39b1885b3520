"""The image each step's app ran from (kinds/pipelinerun/images.py): which pods a pass reads,
what it takes from them, and what the records' lineage gets."""

from __future__ import annotations

import asyncio

from mmif_operator.core.observed import JobKind, JobState, ObservedJob
from mmif_operator.kinds.pipeline.model import PipelineSpec
from mmif_operator.kinds.pipelinerun import images
from mmif_operator.kinds.pipelinerun.model import MAX_APP_IMAGES, PipelineRunStatus
from mmif_operator.records import lineage as LIN

OWNER = "run-uid"
DIGEST = "sha256:" + "a" * 64


def spec(*steps: dict) -> PipelineSpec:
    return PipelineSpec.from_obj({"steps": list(steps), "workspace": {"claimName": "media"}})


def job(
    name: str,
    step: int,
    state: JobState = JobState.SUCCEEDED,
    owner: str = OWNER,
    alternative: str | None = None,
) -> ObservedJob:
    return ObservedJob(
        name,
        JobKind.STEP,
        state,
        item=0,
        step=step,
        owner_uid=owner,
        uid=f"{name}-uid",
        alternative=alternative,
    )


def pod(image: str, image_id: str | None, container: str = "app", sidecar: bool = False) -> dict:
    status = {"name": container, "image": image, **({"imageID": image_id} if image_id is not None else {})}
    where = "initContainers" if sidecar else "containers"
    return {
        "spec": {
            where: [{"name": container, "image": image}],
            "containers": [{"name": "runner", "image": "op"}],
        }
        if sidecar
        else {where: [{"name": container, "image": image}, {"name": "runner", "image": "op"}]},
        "status": {("initContainerStatuses" if sidecar else "containerStatuses"): [status]},
    }


def test_a_job_mode_step_is_read_from_a_finished_job_of_its_own_succeeded_first():
    s = spec({"name": "asr", "image": "whisper:v1"}, {"name": "ocr", "image": "ocr:v2"})
    jobs = [
        job("j-asr-failed", 0, JobState.FAILED),
        job("j-asr-ok", 0),
        job("j-ocr-running", 1, JobState.ACTIVE),
        job("j-ocr-theirs", 1, owner="another-run"),
    ]
    reads = images.reads_needed(None, s, "p", jobs, OWNER)
    assert reads == [images.Read(step="asr", image="whisper:v1", job="j-asr-ok", job_uid="j-asr-ok-uid")]


def test_a_step_with_alternatives_is_read_once_per_app_that_ran():
    s = spec(
        {
            "name": "asr",
            "image": "whisper:v1",
            "alternatives": [
                {"name": "backup", "image": "whisper-small:v1"},
                {"name": "remote", "mode": "Service", "url": "http://asr.example:5000/"},
            ],
        }
    )
    known = [{"step": "asr", "image": "whisper:v1", "imageID": f"w@{DIGEST}"}]
    jobs = [job("own", 0), job("alt", 0, alternative="backup"), job("far", 0, alternative="remote")]
    reads = images.reads_needed(known, s, "p", jobs, OWNER)
    # The own app is known; the url alternative runs elsewhere: only the backup image is read.
    assert reads == [images.Read(step="asr", image="whisper-small:v1", job="alt", job_uid="alt-uid")]


def test_steps_already_known_and_url_steps_are_not_read_again():
    s = spec(
        {"name": "asr", "image": "whisper:v1"},
        {"name": "remote", "mode": "Service", "url": "http://app.example:5000/"},
        {"name": "ner", "image": "spacy:v3", "mode": "Service"},
    )
    known = [{"step": "asr", "image": "whisper:v1", "imageID": f"whisper@{DIGEST}"}]
    reads = images.reads_needed(known, s, "p", [job("j", 0)], OWNER)
    # The Service-mode step is read from its Deployment's pods, by their selector.
    assert [(r.step, r.job) for r in reads] == [("ner", None)]
    assert reads[0].selector and reads[0].selector["mmif.dev/step"] == "ner"
    assert images.reads_needed(None, None, "p", [job("j", 0)], OWNER) == []


def test_a_warm_step_is_read_from_its_runs_pool_not_from_its_item_jobs():
    from mmif_operator.core import labels as L

    s = spec({"name": "asr", "image": "whisper:v1", "warm": True})
    reads = images.reads_needed(None, s, "p", [job("j", 0)], OWNER, run="run-1")
    assert reads == [images.Read(step="asr", selector=L.run_pool_selector("run-1", "asr"))]


def test_image_of_takes_the_app_container_of_a_pod_that_ran_it_sidecar_or_not():
    assert images.image_of([pod("a:v1", None), pod("a:v1", f"a@{DIGEST}")]) == ("a:v1", f"a@{DIGEST}")
    assert images.image_of([pod("a:v1", f"a@{DIGEST}", sidecar=True)]) == ("a:v1", f"a@{DIGEST}")
    assert images.image_of([pod("a:v1", "", container="runner")]) is None
    assert images.image_of([]) is None


def test_merged_adds_only_what_is_new_and_stays_bounded():
    old = [{"step": "asr", "image": "w:v1", "imageID": "x"}]
    assert images.merged(old, {"asr": ("w:v1", "x")}) is None
    assert images.merged(old, {}) is None
    out = images.merged(old, {"ocr": ("o:v2", "y")})
    assert out == old + [{"step": "ocr", "image": "o:v2", "imageID": "y"}]
    many = [{"step": f"s{i}", "image": "i", "imageID": "d"} for i in range(MAX_APP_IMAGES)]
    grown = images.merged(many, {"new": ("i", "d")})
    assert grown is not None and len(grown) == MAX_APP_IMAGES and grown[-1]["step"] == "new"
    # What the status model accepts.
    PipelineRunStatus.model_validate({"appImages": grown})


def test_digests_for_the_lineage_come_from_the_image_ids():
    assert images.digest(f"registry.example/app@{DIGEST}") == DIGEST
    assert images.digest(DIGEST) == DIGEST
    assert images.digest("docker://whatever") is None
    got = images.image_digests(
        [
            {"step": "asr", "image": "w:v1", "imageID": f"w@{DIGEST}"},
            {"step": "ocr", "image": "o:v1", "imageID": "not-a-digest"},
        ]
    )
    assert got == {"w:v1": DIGEST}


def test_the_lineage_names_each_steps_digest():
    pub = LIN.Publication(
        run_name="r",
        run_namespace="ns",
        run_uid="u",
        item_index=0,
        item_name=None,
        pipeline_name="p",
        pipeline_generation=1,
        decision="Pass",
        reviewer="alice",
        comment=None,
        decided_at=None,
        step_images={"asr": "w:v1", "remote": None},
        image_digests={"w:v1": DIGEST},
    )
    doc = LIN.lineage(
        pub,
        sha256="b" * 64,
        size=1,
        path="records/x",
        inputs=[],
        views=[
            {"step": "asr", "app": "http://apps.clams.ai/whisper/v1"},
            {"step": "remote"},
            {"step": "other"},
        ],
    )
    assert [(s["image"], s["imageDigest"]) for s in doc["steps"]] == [
        ("w:v1", DIGEST),
        (None, None),
        (None, None),
    ]


class FakeKube:
    def __init__(self, pods_by_job: dict, pods_by_selector: list, fail: bool = False):
        self.pods_by_job, self.pods_by_selector, self.fail, self.calls = (
            pods_by_job,
            pods_by_selector,
            fail,
            [],
        )

    async def job_pods(self, namespace, job_name, *, uid=None):
        self.calls.append(("job", job_name, uid))
        if self.fail:
            raise RuntimeError("API down")
        return self.pods_by_job.get(job_name, [])

    async def list(self, kind, namespace, labels=None):
        self.calls.append(("list", kind, dict(labels or {})))
        return self.pods_by_selector


def test_read_app_images_reads_each_pod_list_once_and_survives_a_failed_read():
    kube = FakeKube({"j": [pod("w:v1", f"w@{DIGEST}")]}, [pod("n:v3", f"n@{DIGEST}")])
    reads = [images.Read("asr", job="j", job_uid="u"), images.Read("ner", selector={"a": "b"})]
    found = asyncio.run(images.read_app_images(kube, "ns", reads, "run ns/r"))  # type: ignore[arg-type]
    assert found == {"asr": ("w:v1", f"w@{DIGEST}"), "ner": ("n:v3", f"n@{DIGEST}")}
    assert kube.calls == [("job", "j", "u"), ("list", "Pod", {"a": "b"})]
    failing = FakeKube({}, [], fail=True)
    assert asyncio.run(images.read_app_images(failing, "ns", reads[:1], "run ns/r")) == {}  # type: ignore[arg-type]


def test_a_pool_or_deployment_with_no_image_yet_is_listed_again_only_every_few_seconds():
    pool = images.Read(step="asr", selector={"app": "pool"})
    job = images.Read(step="ocr", image="ocr:1", job="run-i0-s1", job_uid="u1")
    listed: dict[str, float] = {}
    assert images.due([pool, job], listed, now=100.0) == [pool, job]
    # The pool's pods had no imageID (still starting): a pass a second later lists them not
    # again; a finished Job's pods are read at once, every time (the Job is deleted soon).
    assert images.due([pool, job], listed, now=101.0) == [job]
    assert images.due([pool], listed, now=100.0 + images.RETRY_SECONDS - 0.1) == []
    assert images.due([pool], listed, now=100.0 + images.RETRY_SECONDS) == [pool]
    # Every item done (the pools go in this pass, and an ended run reads no more): listed now.
    assert images.due([pool], listed, now=100.0 + images.RETRY_SECONDS + 1, last_chance=True) == [pool]
