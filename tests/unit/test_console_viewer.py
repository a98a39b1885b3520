"""The MMIF viewer's pure parts (the timeline's geometry, the page's JSON, the shared reader pod's
arguments and answers) and `kubectl mmif console`'s URL, token and port-forward arguments."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from mmif import AnnotationTypes, DocumentTypes

from mmif_operator.cli import console as cli_console
from mmif_operator.cli import main as cli_main
from mmif_operator.cli import reader as cli_reader
from mmif_operator.cli.errors import CliError
from mmif_operator.console import viewer
from mmif_operator.results import readerpod, summary
from mmif_operator.results.show import MARKER
from mmif_operator.results.timeline import media_duration, timeline, to_seconds

# --- the timeline -------------------------------------------------------------------------------


def frame(view: str, id_: str, start, end, unit: str | None = "milliseconds", label=None) -> dict:
    return {"view": view, "id": id_, "start": start, "end": end, "unit": unit, "label": label}


def summ(frames, duration=None, views=()) -> dict:
    docs = [{"id": "d1", "type": "VideoDocument", "duration": duration}]
    return {"documents": docs, "views": list(views), "timeframes": frames, "timeframesTruncated": False}


def test_bars_are_placed_in_percent_of_the_medias_duration():
    t = timeline(
        summ(
            [frame("v_1", "tf_1", 0, 500), frame("v_1", "tf_2", 1000, 1500, label="speech")],
            duration={"value": 10, "unit": "seconds"},
            views=[{"id": "v_1", "app": "http://apps.mmif.dev/timeframes"}],
        )
    )
    assert t["extent"] == 10.0 and t["durationKnown"] is True
    (lane,) = t["lanes"]
    assert lane["view"] == "v_1" and lane["app"] == "http://apps.mmif.dev/timeframes"
    assert [(b["id"], b["left"], b["width"]) for b in lane["bars"]] == [
        ("tf_1", 0.0, 5.0),
        ("tf_2", 10.0, 5.0),
    ]
    assert lane["bars"][1]["label"] == "speech" and lane["bars"][1]["start"] == 1.0


def test_without_a_duration_the_extent_is_the_last_end_and_it_says_so():
    t = timeline(summ([frame("v_1", "a", 0, 500), frame("v_1", "b", 2000, 2500)]))
    assert t["extent"] == 2.5 and t["durationKnown"] is False
    assert [(b["left"], b["width"]) for b in t["lanes"][0]["bars"]] == [(0.0, 20.0), (80.0, 20.0)]


def test_one_lane_per_view_in_order_and_seconds_mix_with_milliseconds():
    t = timeline(summ([frame("v_2", "x", 1, 2, "seconds"), frame("v_1", "y", 0, 4000)]))
    assert [lane["view"] for lane in t["lanes"]] == ["v_2", "v_1"]
    assert t["extent"] == 4.0
    assert (t["lanes"][0]["bars"][0]["left"], t["lanes"][0]["bars"][0]["width"]) == (25.0, 25.0)


def test_frames_beyond_the_duration_are_clamped_and_undrawable_ones_listed():
    t = timeline(
        summ(
            [
                frame("v", "late", 8000, 12000),
                frame("v", "frames", 10, 20, "frames"),
                frame("v", "bad", 5, 1),
            ],
            duration={"value": 10000, "unit": "milliseconds"},
        )
    )
    (bar,) = t["lanes"][0]["bars"]
    assert (bar["left"], bar["width"]) == (80.0, 20.0)
    assert [u["id"] for u in t["undrawn"]] == ["frames", "bad"]


def test_instants_at_zero_and_no_frames():
    assert timeline(summ([frame("v", "i", 0, 0)]))["lanes"][0]["bars"][0]["width"] == 0.0
    assert timeline(summ([])) == {
        "extent": 0.0,
        "durationKnown": False,
        "lanes": [],
        "undrawn": [],
        "truncated": False,
    }


def test_units_and_durations():
    assert to_seconds(1500, "milliseconds") == 1.5 and to_seconds("2", "seconds") == 2.0
    assert (
        to_seconds(3, "frames") is None and to_seconds("x", "seconds") is None and to_seconds(1, None) is None
    )
    assert media_duration([{"duration": {"value": 90, "unit": None}}, {"duration": None}]) == 90.0
    assert media_duration([{"duration": {"value": 0, "unit": "seconds"}}]) is None


# --- the viewer's JSON, from a real MMIF summarised with mmif-python ----------------------------

MMIF = (
    """{
  "metadata": {"mmif": "http://mmif.clams.ai/1.0.4"},
  "documents": [{"@type": "VD_TYPE", "properties":
    {"id": "d1", "mime": "video/mp4", "location": "file:///data/media/a.mp4"}}],
  "views": [
    {"id": "v_0", "metadata": {"app": "http://apps.mmif.dev/textgen/v1", "timestamp": "2026-01-01T00:00:00",
      "contains": {"TD_TYPE": {}}},
     "annotations": [{"@type": "TD_TYPE",
       "properties": {"id": "td1", "text": {"@value": "hello"}}}]},
    {"id": "v_1", "metadata": {"app": "http://apps.mmif.dev/timeframes/v1", "timestamp": "2026-01-01T00:00:00",
      "parameters": {"count": "2"},
      "contains": {"TF_TYPE": {"timeUnit": "milliseconds", "document": "d1"}}},
     "annotations": [
       {"@type": "TF_TYPE", "properties": {"id": "tf_1", "start": 0, "end": 500}},
       {"@type": "TF_TYPE", "properties": {"id": "tf_2", "start": 1000, "end": 1500}}]}
  ]
}""".replace("TF_TYPE", str(AnnotationTypes.TimeFrame))
    .replace("TD_TYPE", str(DocumentTypes.TextDocument))
    .replace("VD_TYPE", str(DocumentTypes.VideoDocument))
)


def answer(**item) -> dict:
    base = {"index": 1, "name": "clip-1", "state": "Succeeded", "mmif": "items/00001/final.mmif"}
    base.update(item)
    return {"runDir": "/data/mmif-runs/r", "items": [base]}


def test_the_viewer_json_has_views_counts_totals_timeline_and_the_download_link():
    got = viewer.viewer_json("ns1", "r", answer(summary=summary.summarize(MMIF)))
    assert (got["index"], got["name"], got["state"], got["path"]) == (
        1,
        "clip-1",
        "Succeeded",
        "items/00001/final.mmif",
    )
    assert got["download"] == "/api/namespaces/ns1/runs/r/items/1/mmif?download=1"
    assert [(v["app"], v["version"], v["parameters"]) for v in got["views"]] == [
        ("http://apps.mmif.dev/textgen", "v1", {}),
        ("http://apps.mmif.dev/timeframes", "v1", {"count": "2"}),
    ]
    assert got["views"][1]["annotations"] == {"TimeFrame": 2}
    assert got["annotationTotals"] == {"TextDocument": 1, "TimeFrame": 2}
    assert got["documents"][0]["location"] == "file:///data/media/a.mp4"
    bars = got["timeline"]["lanes"][0]["bars"]
    assert [(round(b["left"], 1), round(b["width"], 1)) for b in bars] == [(0.0, 33.3), (66.7, 33.3)]
    assert [b["id"] for b in bars] == ["v_1:tf_1", "v_1:tf_2"] and got["timeline"]["lanes"][0][
        "app"
    ].endswith("timeframes")


def test_an_item_without_mmif_has_no_download_and_an_unreadable_one_says_why():
    got = viewer.viewer_json("ns1", "r", answer(mmif=None, state="Pending", summary=None))
    assert got["download"] is None and got["views"] == [] and got["timeline"] is None
    got = viewer.viewer_json(
        "ns1", "r", answer(summary=None, summaryError="items/00001/final.mmif: ValueError: x")
    )
    assert got["summaryError"].endswith("ValueError: x") and got["download"]


# --- the shared reader pod ------------------------------------------------------------------------

RUN = {
    "metadata": {"name": "r", "namespace": "ns1"},
    "spec": {"workspace": {"claimName": "media"}},
    "status": {"outputPath": "/data/mmif-runs/r", "pipelineSpec": {"steps": [{"name": "a"}, {"name": "b"}]}},
}


def test_show_args_and_the_pod_are_the_plugins():
    args = readerpod.show_args(RUN, "summary", "1")
    assert args == ["summary", "--run-dir", "/data/mmif-runs/r", "--steps", "a,b", "--item", "1"]
    pod = readerpod.reader_pod(RUN, args)
    assert pod == cli_reader.reader_pod(RUN, args)
    assert pod["spec"]["containers"][0]["command"] == ["mmif-runner", "show", *args]
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_answers_and_stuck_pods():
    assert readerpod.parse_answer("noise\n" + MARKER + '{"ok": true, "result": {"x": 1}}') == {"x": 1}
    with pytest.raises(readerpod.ReaderError, match="no item 7"):
        readerpod.parse_answer(MARKER + '{"ok": false, "error": "no item 7"}')
    with pytest.raises(CliError, match="no item 7"):  # the plugin's error for the same answer
        cli_reader.parse_answer(MARKER + '{"ok": false, "error": "no item 7"}')
    assert (
        readerpod.stuck([("ContainerCreating", None), ("ErrImagePull", "not found")])
        == "ErrImagePull: not found"
    )
    assert readerpod.stuck([("ContainerCreating", "")]) is None


# --- kubectl mmif console -------------------------------------------------------------------------


def test_the_url_sends_the_login_page_on_to_the_namespaces_runs_with_the_token_in_the_fragment():
    url = cli_console.console_url(8123, "team-a", "abc.DEF-_~+/x=")
    assert url.startswith("http://127.0.0.1:8123/login?next=/runs%3Fns%3Dteam-a#token=")
    parts = urlsplit(url)
    assert parse_qs(parts.query)["next"] == ["/runs?ns=team-a"]
    assert unquote(parts.fragment.removeprefix("token=")) == "abc.DEF-_~+/x="
    assert (
        cli_console.console_url(8123, "team-a", None)
        == "http://127.0.0.1:8123/login?next=/runs%3Fns%3Dteam-a"
    )


def test_the_token_is_the_kubeconfig_users_bearer_token_only():
    assert cli_console.bearer_token({"BearerToken": "Bearer eyJ.x"}) == "eyJ.x"
    assert cli_console.bearer_token({"authorization": "bearer t"}) == "t"
    assert cli_console.bearer_token({"BearerToken": "Basic dXNlcjpwdw=="}) is None
    assert cli_console.bearer_token({}) is None and cli_console.bearer_token(None) is None


def test_the_port_forward_command_and_the_options():
    assert cli_console.port_forward_command(8123, None, None, "mmif-console-abc") == [
        "kubectl", "-n", "mmif-system", "port-forward", "--address", "127.0.0.1", "pod/mmif-console-abc", "8123:http",
    ]  # fmt: skip
    cmd = cli_console.port_forward_command(9000, "/k.conf", "prod", "p")
    assert cmd[:5] == ["kubectl", "--kubeconfig", "/k.conf", "--context", "prod"] and cmd[-1] == "9000:http"
    args = cli_main.parser().parse_args(["console", "--port", "9000", "--no-open", "-n", "team-a"])
    assert (args.port, args.no_open, args.namespace, args.func) == (
        9000,
        True,
        "team-a",
        cli_console.cmd_console,
    )
    args = cli_main.parser().parse_args(["console"])
    assert (args.port, args.no_open) == (0, False)
    assert 0 < cli_console.free_port() < 65536


def test_the_console_pod_forwarded_to_is_ready_and_not_terminating_the_newest_first():
    from datetime import UTC, datetime
    from types import SimpleNamespace as NS

    def pod(name, created, ready=True, deleting=False):
        cond = NS(type="Ready", status="True" if ready else "False")
        meta = NS(name=name, creation_timestamp=datetime(2026, 12, 1, created, tzinfo=UTC),
                  deletion_timestamp=datetime(2026, 12, 1, 20, tzinfo=UTC) if deleting else None)  # fmt: skip
        return NS(metadata=meta, status=NS(conditions=[cond]))

    # During a restart: the old pod, Ready for longest but terminating, is not the one.
    assert cli_console.serving_pod([pod("old", 1, deleting=True), pod("new", 2)]) == "new"
    assert cli_console.serving_pod([pod("old", 1), pod("new", 2, ready=False)]) == "old"
    assert cli_console.serving_pod([pod("a", 1), pod("b", 3)]) == "b"
    assert cli_console.serving_pod([pod("old", 1, deleting=True)]) is None
    assert cli_console.serving_pod([]) is None
