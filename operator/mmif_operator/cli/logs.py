"""`logs RUN ITEM [--step S]`: the runner's and the app's logs of an item-step, also after the
step's pod is gone: the runner's from the volume, the app's (for a failed item-step) from what the
operator kept (core/applogs.py). What is shown, and why when something is not, is
results/logs.py's, shared with the web console; here the plugin's client reads and prints it."""

from __future__ import annotations

import argparse
from typing import Any

from mmif_operator.cli import reader
from mmif_operator.cli.errors import CliError, Exit
from mmif_operator.cli.kube import Kube
from mmif_operator.results import logs as shared
from mmif_operator.results.logs import MAX_LOG_BYTES, item_index, step_selector  # noqa: F401


class _Source:
    """results/logs.py's reads, with the plugin's client (the person's kubeconfig)."""

    def __init__(self, kube: Kube, run: dict[str, Any], image: str | None) -> None:
        self.kube, self.run, self.image = kube, run, image

    async def step_pods(self, selector: str) -> list[shared.Pod]:
        pods = await self.kube.list_pods(selector)
        return [
            shared.Pod(
                p.metadata.name,
                tuple(c.name for c in [*p.spec.containers, *(p.spec.init_containers or [])]),
                p.metadata.creation_timestamp.isoformat() if p.metadata.creation_timestamp else "",
            )
            for p in pods
        ]

    async def pod_log(self, pod: str, container: str) -> str:
        try:
            return await self.kube.pod_log(pod, container, limit_bytes=MAX_LOG_BYTES)
        except CliError as e:
            raise shared.Unavailable(str(e)) from None

    async def config_map(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.kube.get_config_map(name)
        except CliError as e:
            raise shared.Unavailable(str(e)) from None

    async def read_volume(self, args: list[str]) -> dict[str, Any]:
        try:
            return await reader.read(self.kube, self.run, args, self.image)
        except CliError as e:
            raise shared.Unavailable(str(e)) from None


async def cmd_logs(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    run = await kube.get_run(args.run)
    try:
        sections = await shared.gather(run, args.item, args.step, _Source(kube, run, args.reader_image))
    except shared.LogsError as e:
        raise CliError(str(e), Exit.USAGE if e.usage else Exit.ERROR) from None
    if args.step and not shared.has_log(sections):
        raise CliError("; ".join(s.title for s in sections))
    for s in sections:
        ui.out(f"== {s.title} ==")
        if s.text:
            ui.stream.write(s.text if s.text.endswith("\n") else s.text + "\n")
    return Exit.OK if shared.has_log(sections) else Exit.ERROR


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("logs", parents=[common], help="the runner's and the app's logs of an item-step")
    p.add_argument("run")
    p.add_argument("item", help="the item's index or name")
    p.add_argument("--step", help="one step (default: every step of the item)")
    p.add_argument(
        "--reader-image",
        help=f"the image of the reader pod (default ${reader.IMAGE_ENV} or {reader.DEFAULT_IMAGE})",
    )
    p.set_defaults(func=cmd_logs)
