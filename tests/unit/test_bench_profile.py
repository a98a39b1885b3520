"""The bench's control-plane profile: the API server's request counters, by verb and resource."""

from bench.profile import profile_between, profile_table, request_counts

METRICS = """\
# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="batch",resource="jobs",scope="resource",subresource="",verb="POST",version="v1"} 10
apiserver_request_total{code="409",component="apiserver",dry_run="",group="batch",resource="jobs",scope="resource",subresource="",verb="POST",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="batch",resource="jobs",scope="resource",subresource="status",verb="PUT",version="v1"} 30
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 5
apiserver_request_total{code="0",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1"} 1
apiserver_request_duration_seconds_count{verb="POST",resource="jobs"} 99
"""


def test_counts_are_summed_by_verb_and_resource_with_its_subresource():
    counts = request_counts(METRICS)
    assert counts == {
        ("POST", "jobs"): 12.0,
        ("PUT", "jobs/status"): 30.0,
        ("LIST", "pods"): 5.0,
        ("WATCH", "pods"): 1.0,
    }


def test_a_scenario_profile_is_the_difference_per_item_step_heaviest_writes_first():
    before = {("POST", "jobs"): 2.0, ("PUT", "jobs/status"): 10.0, ("LIST", "pods"): 5.0}
    after = request_counts(METRICS)
    p = profile_between(before, after, item_steps=10)
    assert p.writes == 10 + 20 and p.reads == 1
    assert p.top() == [(("PUT", "jobs/status"), 2.0), (("POST", "jobs"), 1.0)]
    text = profile_table("operator 10", p)
    assert "3.00 writes and 0.10 reads per item-step" in text
    assert "| PUT | jobs/status | 2.00 |" in text


def test_a_counter_that_went_down_means_a_restarted_api_server():
    p = profile_between({("POST", "jobs"): 100.0}, {("POST", "jobs"): 7.0}, item_steps=7)
    assert p.by_key == {("POST", "jobs"): 7.0}


def test_the_startup_bench_pipelines_are_valid_pipelines_with_the_delay_and_a_bound_above_it():
    from bench.startup import pipeline_body
    from mmif_operator.kinds.pipeline.model import PipelineSpec

    for mode in ("Job", "Service", "Autoscaled", "Warm"):
        body = pipeline_body("startup", mode, steps=2, startup_seconds=20, replicas=2)
        spec = PipelineSpec.model_validate(body["spec"])
        assert [s.mode.value for s in spec.steps] == ["Job" if mode in ("Job", "Warm") else "Service"] * 2
        assert all(s.warm == (mode == "Warm") for s in spec.steps)
        assert all((s.autoscaling is not None) == (mode == "Autoscaled") for s in spec.steps)
        assert all(s.replicas == (1 if mode == "Job" else 2) for s in spec.steps)
        for s in spec.steps:
            assert {"name": "CLAMS_STARTUP_DELAY_SECONDS", "value": "20"} in [e.model_dump() for e in s.env]
            assert s.startup_timeout_seconds > 20
