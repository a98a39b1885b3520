"""The control plane's cost of one scenario, by verb and resource: every client's requests (the
operator, the Job controller, the garbage collector, the scheduler, kwok, the kubelet, the bench
itself) as the API server counts them in `apiserver_request_total`, read before and after, per
item-step. On 2 cores the API server is the ceiling, so this is where a design that makes fewer
objects per item-step shows (issue 15)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from .kube import Kube

METRIC = "apiserver_request_total"
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"})
Key = tuple[str, str]  # (verb, resource[/subresource])


def request_counts(metrics_text: str) -> dict[Key, float]:
    """{(verb, resource or resource/subresource): requests} from the API server's /metrics text
    (summed over codes, groups, versions and scopes; long-running WATCHes count once, at start)."""
    wanted = "\n".join(
        line
        for line in metrics_text.splitlines()
        if line.startswith((METRIC, f"# TYPE {METRIC}", "# HELP " + METRIC))
    )
    out: dict[Key, float] = defaultdict(float)
    for family in text_string_to_metric_families(wanted + "\n"):
        for sample in family.samples:
            if sample.name != METRIC:
                continue
            labels = sample.labels
            resource = labels.get("resource") or "(non-resource)"
            if labels.get("subresource"):
                resource = f"{resource}/{labels['subresource']}"
            out[(labels.get("verb", "?").upper(), resource)] += sample.value
    return dict(out)


async def read_counts(kube: Kube) -> dict[Key, float]:
    """The API server's request counters now."""
    status, raw = await kube.raw("GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"GET /metrics: {status}")
    return request_counts(raw.decode("utf-8", "replace"))


@dataclass(frozen=True)
class Profile:
    """What one scenario cost the API server."""

    item_steps: int
    by_key: dict[Key, float]  # requests during the scenario

    @property
    def writes(self) -> float:
        return sum(v for (verb, _), v in self.by_key.items() if verb in WRITE_VERBS)

    @property
    def reads(self) -> float:
        return sum(v for (verb, _), v in self.by_key.items() if verb not in WRITE_VERBS)

    def per_item_step(self, value: float) -> float:
        return value / self.item_steps if self.item_steps else 0.0

    def top(self, n: int = 10, writes_only: bool = True) -> list[tuple[Key, float]]:
        """The n (verb, resource) with most requests, most first, per item-step."""
        rows = [
            (k, self.per_item_step(v))
            for k, v in self.by_key.items()
            if v > 0 and (not writes_only or k[0] in WRITE_VERBS)
        ]
        return sorted(rows, key=lambda kv: (-kv[1], kv[0]))[:n]


def profile_between(before: Mapping[Key, float], after: Mapping[Key, float], item_steps: int) -> Profile:
    """The requests made between two reads of the counters (a counter that went down means the
    API server restarted in between: its `after` value is what was made since)."""
    by_key = {}
    for key, value in after.items():
        made = value - before.get(key, 0.0)
        if made < 0:
            made = value
        if made > 0:
            by_key[key] = made
    return Profile(item_steps, by_key)


def profile_table(label: str, p: Profile, n: int = 10) -> str:
    """A short Markdown table of a scenario's writes per item-step, the heaviest first."""
    lines = [
        f"{label}: {p.per_item_step(p.writes):.2f} writes and {p.per_item_step(p.reads):.2f} reads "
        f"per item-step, all clients of the API server",
        "",
        "| verb | resource | writes/item-step |",
        "|---|---|---|",
    ]
    lines += [f"| {verb} | {resource} | {v:.2f} |" for (verb, resource), v in p.top(n)]
    return "\n".join(lines)
