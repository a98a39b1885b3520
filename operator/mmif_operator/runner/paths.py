"""The output layout on the volume (docs/design.md, "Outputs on the volume"): the one place that
computes every path. Pure string work with POSIX paths, so the operator can use it to report
`outputPath` / `manifestPath` as pods see them.

    <mountPath>/<outputDir>/<run>/
      .run-uid  items.jsonl  manifest.json  review.json (reviewed runs, once passed)
      items/<index:05d>/source.mmif  <k:02d>-<step>.mmif  <k:02d>-<step>.json  final.mmif
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

DEFAULT_MOUNT_PATH = "/data"
DEFAULT_OUTPUT_DIR = "mmif-runs"

RUN_UID_FILE = ".run-uid"
ITEMS_FILE = "items.jsonl"
MANIFEST_FILE = "manifest.json"
REVIEW_FILE = "review.json"  # written by `mmif-runner publish` once a review passed the run
ITEMS_DIR = "items"
SOURCE_MMIF = "source.mmif"
FINAL_MMIF = "final.mmif"


def run_dir(run_name: str, mount_path: str = DEFAULT_MOUNT_PATH, output_dir: str = DEFAULT_OUTPUT_DIR) -> str:
    """The run's folder as seen in pods, e.g. /data/mmif-runs/run-1."""
    return posixpath.normpath(posixpath.join(mount_path, output_dir, run_name))


ARCHIVE_DIR = ".archive"  # <outputDir>/.archive/<run>: archived runs (never a run name: DNS names)


def archive_dir(
    run_name: str, mount_path: str = DEFAULT_MOUNT_PATH, output_dir: str = DEFAULT_OUTPUT_DIR
) -> str:
    """Where `spec.workInProgress: Archive` moves the run's folder, e.g. /data/mmif-runs/.archive/run-1."""
    return posixpath.normpath(posixpath.join(mount_path, output_dir, ARCHIVE_DIR, run_name))


def item_dirname(item_index: int) -> str:
    return f"{item_index:05d}"


def step_basename(step_index: int, step_name: str) -> str:
    return f"{step_index:02d}-{step_name}"


@dataclass(frozen=True)
class RunLayout:
    """Every path of one run, from its folder (`root`, absolute)."""

    root: str

    @property
    def run_uid(self) -> str:
        return posixpath.join(self.root, RUN_UID_FILE)

    @property
    def items(self) -> str:
        return posixpath.join(self.root, ITEMS_FILE)

    @property
    def manifest(self) -> str:
        return posixpath.join(self.root, MANIFEST_FILE)

    @property
    def review(self) -> str:
        return posixpath.join(self.root, REVIEW_FILE)

    def item_dir(self, item_index: int) -> str:
        return posixpath.join(self.root, ITEMS_DIR, item_dirname(item_index))

    def source_mmif(self, item_index: int) -> str:
        return posixpath.join(self.item_dir(item_index), SOURCE_MMIF)

    def step_mmif(self, item_index: int, step_index: int, step_name: str) -> str:
        return posixpath.join(self.item_dir(item_index), step_basename(step_index, step_name) + ".mmif")

    def step_record(self, item_index: int, step_index: int, step_name: str) -> str:
        return posixpath.join(self.item_dir(item_index), step_basename(step_index, step_name) + ".json")

    def final_mmif(self, item_index: int) -> str:
        return posixpath.join(self.item_dir(item_index), FINAL_MMIF)

    def relative(self, path: str) -> str:
        """`path` relative to the run folder (as the manifest reports paths)."""
        return posixpath.relpath(path, self.root)


# -- analyses -----------------------------------------------------------------------------------
#     <run folder>/analyses/<analysis job>/
#       .analysis-uid  manifest.json
#       items/<index:05d>/analysis.mmif  analysis.json
ANALYSES_DIR = "analyses"
ANALYSIS_UID_FILE = ".analysis-uid"
ANALYSIS_MMIF = "analysis.mmif"
ANALYSIS_RECORD = "analysis.json"


def analysis_dir(run_folder: str, analysis_name: str) -> str:
    """An AnalysisJob's folder, e.g. /data/mmif-runs/run-1/analyses/run-1-ner."""
    return posixpath.join(run_folder, ANALYSES_DIR, analysis_name)


@dataclass(frozen=True)
class AnalysisLayout:
    """Every path of one AnalysisJob, from its folder (`root`, absolute)."""

    root: str

    @property
    def owner_uid(self) -> str:
        return posixpath.join(self.root, ANALYSIS_UID_FILE)

    @property
    def manifest(self) -> str:
        return posixpath.join(self.root, MANIFEST_FILE)

    def item_dir(self, item_index: int) -> str:
        return posixpath.join(self.root, ITEMS_DIR, item_dirname(item_index))

    def output(self, item_index: int) -> str:
        return posixpath.join(self.item_dir(item_index), ANALYSIS_MMIF)

    def record(self, item_index: int) -> str:
        return posixpath.join(self.item_dir(item_index), ANALYSIS_RECORD)

    def relative(self, path: str) -> str:
        return posixpath.relpath(path, self.root)


# -- the runner's own log of one item-step, beside its result record ------------------------------
STEP_LOG_SUFFIX = ".log"


def step_log(layout: RunLayout, item_index: int, step_index: int, step_name: str) -> str:
    """`items/<index>/<k>-<step>.log`: what `mmif-runner step` logged for that item-step (every
    attempt, bounded; runner/steplog.py)."""
    return posixpath.join(layout.item_dir(item_index), step_basename(step_index, step_name) + STEP_LOG_SUFFIX)
