"""`kubectl mmif`: run, watch and read mmif-operator runs with your own Kubernetes identity.

    kubectl mmif run PIPELINE [DOC... | --items FILE] [--watch]
    kubectl mmif status|watch|wait|cancel RUN
    kubectl mmif review pass|fail RUN --comment TEXT [--on-conflict Block|Supersede|Ignore]
    kubectl mmif results RUN [ITEM] [--mmif | --view ID]
    kubectl mmif logs RUN ITEM [--step STEP]
    kubectl mmif records [--input X] [--app A] [--legal-tag T] [--run R] [--since T] [--until T]
    kubectl mmif record ID [--mmif]
    kubectl mmif wip delete|archive|keep RUN [--no-wait]
    kubectl mmif monitors;  kubectl mmif monitor NAME [--reports N]
    kubectl mmif console [--port N] [--no-open]

Exit codes: 0 done (a watched run Succeeded), 1 the run Failed or was Cancelled, 2 bad arguments,
3 timed out, 4 refused by the API server or not found, 5 the run awaits review."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import IO

from rich.console import Console

from mmif_operator.cli import console, logs, monitors, records, results, runs, wip
from mmif_operator.cli.errors import CliError
from mmif_operator.cli.kube import Kube, Target

NON_TTY_WIDTH = 200  # a non-terminal gets long lines rather than wrapped messages


class Ui:
    """Where output goes: `console` (rich, for tables and bars), `stream` (plain lines)."""

    def __init__(self, stream: IO[str], err: IO[str]) -> None:
        self.stream, self.errors = stream, err
        tty = stream.isatty()
        self.console = Console(
            file=stream,
            highlight=False,
            markup=False,
            width=None if tty else NON_TTY_WIDTH,
            soft_wrap=not tty,
        )

    def out(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def err(self, line: str) -> None:
        self.errors.write(line + "\n")
        self.errors.flush()


def common_options() -> argparse.ArgumentParser:
    """kubectl's own options, accepted after every command."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("kubectl options")
    g.add_argument("--kubeconfig", help="the kubeconfig file (default $KUBECONFIG, else ~/.kube/config)")
    g.add_argument("--context", help="the kubeconfig context (default: the current one)")
    g.add_argument("-n", "--namespace", help="the namespace (default: the context's)")
    g.add_argument("--as", dest="as_user", metavar="USER", help="impersonate this user")
    g.add_argument("--as-group", dest="as_group", metavar="GROUP", help="impersonate this group (one)")
    return p


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubectl mmif", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = common_options()
    runs.add_commands(sub, common)
    results.add_commands(sub, common)
    logs.add_commands(sub, common)
    records.add_commands(sub, common)
    monitors.add_commands(sub, common)
    console.add_commands(sub, common)
    wip.add_commands(sub, common)
    return p


async def _main(args: argparse.Namespace, ui: Ui) -> int:
    target = Target(args.kubeconfig, args.context, args.namespace, args.as_user, args.as_group)
    async with await Kube.connect(target) as kube:
        return int(await args.func(kube, args, ui))


def main(argv: list[str] | None = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    args = parser().parse_args(argv)
    ui = Ui(stdout or sys.stdout, stderr or sys.stderr)
    try:
        return asyncio.run(_main(args, ui))
    except CliError as e:
        ui.err(f"error: {e}")
        return int(e.code)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
