"""The claim rule of run and AnalysisJob folders (runner/claims.py): never inside another's
folder, never holding one, whatever the names and outputDir; atomic; nothing of another's touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmif_operator.runner import claims
from mmif_operator.runner.paths import ANALYSIS_UID_FILE, RUN_UID_FILE, analysis_dir, run_dir

ALICE, BOB = "uid-alice", "uid-bob"


def run_owner(uid):
    return claims.Owner(RUN_UID_FILE, uid)


def aj_owner(uid):
    return claims.Owner(ANALYSIS_UID_FILE, uid)


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    return str(root)


def tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def claim_run(ws, name, uid, output_dir="mmif-runs"):
    claims.claim(ws, run_dir(name, ws, output_dir), run_owner(uid))


def claim_analysis(ws, run_name, run_uid, name, uid):
    folder = run_dir(run_name, ws)
    claims.claim(folder, analysis_dir(folder, name), aj_owner(uid), allowed={folder: (RUN_UID_FILE, run_uid)})


def test_a_fresh_folder_is_claimed_and_a_second_claim_by_the_same_owner_is_a_no_op(ws):
    claim_run(ws, "alice-run", ALICE)
    folder = run_dir("alice-run", ws)
    assert Path(folder, RUN_UID_FILE).read_text() == ALICE + "\n"
    os.makedirs(os.path.join(folder, "items", "00000"))
    claim_run(ws, "alice-run", ALICE)  # a retried prepare
    assert sorted(os.listdir(folder)) == [".run-uid", "items"]
    with pytest.raises(claims.ClaimConflict, match=f"belongs to run {ALICE}, not to run {BOB}"):
        claim_run(ws, "alice-run", BOB)


# The three attacks of issue 10, case 2: bob's run after alice's is refused, and nothing of his
# appears inside alice's folder.
@pytest.mark.parametrize(
    "name, output_dir",
    [
        ("manifest.json", "mmif-runs/alice-run"),
        ("final.mmif", "mmif-runs/alice-run/items/00000"),
        ("alice-run-seg", "mmif-runs/alice-run/analyses"),
    ],
)
def test_a_run_folder_inside_another_runs_folder_is_refused_and_creates_nothing(ws, name, output_dir):
    claim_run(ws, "alice-run", ALICE)
    folder = run_dir("alice-run", ws)
    os.makedirs(os.path.join(folder, "items", "00000"))
    before = tree(ws), sorted(os.walk(folder))
    with pytest.raises(claims.ClaimConflict) as err:
        claim_run(ws, name, BOB, output_dir)
    assert f"lies inside {folder}, the folder of run {ALICE}" in str(err.value)
    assert (tree(ws), sorted(os.walk(folder))) == before, "bob's claim made nothing inside alice's folder"


@pytest.mark.parametrize(
    "name, output_dir, inside",
    [
        ("manifest.json", "mmif-runs/alice-run", "manifest.json"),
        ("final.mmif", "mmif-runs/alice-run/items/00000", "items/00000/final.mmif"),
        ("alice-run-seg", "mmif-runs/alice-run/analyses", "analyses/alice-run-seg"),
    ],
)
def test_the_reverse_order_refuses_the_later_run_naming_what_its_folder_holds(ws, name, output_dir, inside):
    claim_run(ws, name, BOB, output_dir)  # the attacker first
    with pytest.raises(claims.ClaimConflict) as err:
        claim_run(ws, "alice-run", ALICE)
    message = str(err.value)
    assert f"{run_dir('alice-run', ws)} already exists and holds {inside}, the folder of run {BOB}" in message
    assert not os.path.exists(os.path.join(run_dir("alice-run", ws), RUN_UID_FILE))


def test_an_analysis_folder_lies_under_its_own_source_run_only(ws):
    claim_run(ws, "alice-run", ALICE)
    claim_analysis(ws, "alice-run", ALICE, "alice-run-seg", "uid-seg")
    folder = analysis_dir(run_dir("alice-run", ws), "alice-run-seg")
    assert Path(folder, ANALYSIS_UID_FILE).read_text().strip() == "uid-seg"
    claim_analysis(ws, "alice-run", ALICE, "alice-run-seg", "uid-seg")  # another item's Job
    with pytest.raises(
        claims.ClaimConflict, match="belongs to AnalysisJob uid-seg, not to AnalysisJob uid-new"
    ):
        claim_analysis(ws, "alice-run", ALICE, "alice-run-seg", "uid-new")
    with pytest.raises(claims.ClaimConflict, match="should be the folder of run uid-other"):
        claim_analysis(ws, "alice-run", "uid-other", "x", "uid-x")
    # a run inside an analysis's folder: refused as inside any other folder
    with pytest.raises(claims.ClaimConflict, match="lies inside .*, the folder of run uid-alice"):
        claim_run(ws, "r", BOB, "mmif-runs/alice-run/analyses/alice-run-seg")
    # an analysis folder above a run's (a workspace whose top is the analysis's run folder)
    with pytest.raises(claims.ClaimConflict, match="the folder of AnalysisJob uid-seg"):
        claims.claim(
            run_dir("alice-run", ws) + "/analyses",
            run_dir("alice-run", ws) + "/analyses/alice-run-seg/r",
            run_owner(BOB),
        )


def test_an_analysis_folder_another_run_claimed_first_is_refused(ws):
    claim_run(ws, "alice-run-seg", BOB, "mmif-runs/alice-run/analyses")  # before alice's run
    with pytest.raises(claims.ClaimConflict):
        claim_run(ws, "alice-run", ALICE)
    # even if alice's run folder were claimed somehow, her analysis never takes bob's folder
    os.rename(os.path.join(run_dir("alice-run", ws), "analyses"), os.path.join(ws, "moved"))
    claim_run(ws, "alice-run", ALICE)
    os.rename(os.path.join(ws, "moved"), os.path.join(run_dir("alice-run", ws), "analyses"))
    with pytest.raises(claims.ClaimConflict, match=f"belongs to run {BOB}"):
        claim_analysis(ws, "alice-run", ALICE, "alice-run-seg", "uid-seg")


def test_a_non_empty_folder_without_a_marker_is_refused(ws):
    folder = run_dir("r", ws)
    os.makedirs(folder)
    Path(folder, "results.csv").write_text("mine\n")
    with pytest.raises(claims.ClaimConflict, match=r"not empty .* \(holds results.csv\)"):
        claim_run(ws, "r", ALICE)
    assert os.listdir(folder) == ["results.csv"]


def test_a_symbolic_link_on_the_way_cannot_hide_a_claimed_folder(ws):
    claim_run(ws, "alice-run", ALICE)
    os.makedirs(os.path.join(run_dir("alice-run", ws), "items"))
    os.symlink(os.path.join(run_dir("alice-run", ws), "items"), os.path.join(ws, "innocent"))
    with pytest.raises(claims.ClaimConflict, match=f"the folder of run {ALICE}"):
        claim_run(ws, "00000", BOB, "innocent")
    assert os.listdir(os.path.join(run_dir("alice-run", ws), "items")) == []
    outside = os.path.join(os.path.dirname(ws), "outside")
    os.makedirs(outside)
    os.symlink(outside, os.path.join(ws, "out"))
    with pytest.raises(claims.ClaimConflict, match="leads out of"):
        claim_run(ws, "r", BOB, "out")
    assert os.listdir(outside) == []


def test_a_nested_claim_that_raced_ours_makes_ours_fail_and_leaves_no_marker(ws, monkeypatch):
    """Bob checked the way down to mmif-runs/r/inner before alice's marker existed; his marker
    appears right after alice's: alice's check after her claim sees it and gives up."""
    real = claims._create_marker

    def racing(folder, owner):
        done = real(folder, owner)
        if owner.uid == ALICE:
            os.makedirs(os.path.join(folder, "inner"))
            real(os.path.join(folder, "inner"), run_owner(BOB))
        return done

    monkeypatch.setattr(claims, "_create_marker", racing)
    with pytest.raises(claims.ClaimConflict, match=f"holds inner, the folder of run {BOB}"):
        claim_run(ws, "r", ALICE)
    assert not os.path.exists(os.path.join(run_dir("r", ws), RUN_UID_FILE))


def test_verify_names_the_owner_or_the_missing_marker(ws):
    claim_run(ws, "r", ALICE)
    claims.verify(run_dir("r", ws), run_owner(ALICE))
    with pytest.raises(claims.ClaimConflict, match=f"belongs to run {ALICE}, not to run {BOB}"):
        claims.verify(run_dir("r", ws), run_owner(BOB))
    os.makedirs(run_dir("s", ws))
    with pytest.raises(FileNotFoundError, match="never claimed"):
        claims.verify(run_dir("s", ws), run_owner(ALICE))
