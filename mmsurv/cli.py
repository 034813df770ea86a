"""Command line: ``mmsurv run [NOTEBOOK ...] [--smoke] [-p NAME=VALUE ...]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .environment import PROJECT_ROOT

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmsurv", description="mmsurv: multimodal survival-analysis teaching kit")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks headless with papermill and summarise their metrics")
    run.add_argument("notebooks", nargs="*", help="names or number prefixes (e.g. 00); default: all, in order")
    run.add_argument("--smoke", action="store_true", help="small, fast settings (as the tests run)")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE", help="override a notebook parameter (repeatable)")
    run.add_argument("--results", type=Path, default=PROJECT_ROOT / "results", help="results folder (default: results/)")
    run.add_argument("--cell-timeout", type=int, default=3600, help="seconds any one cell may run (default 3600)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mmsurv`` command; returns the process exit status."""
    args = _build_parser().parse_args(argv)
    if args.command == "run":
        from .runner import format_summary, parse_parameter, run_notebooks

        try:
            parameters = dict(parse_parameter(p) for p in args.parameter)
            runs = run_notebooks(
                args.notebooks,
                smoke=args.smoke,
                parameters=parameters,
                results_root=args.results,
                cell_timeout=args.cell_timeout,
                progress_bar=not args.no_progress,
            )
        except ValueError as err:
            print(f"mmsurv run: {err}", file=sys.stderr)
            return 2
        print(format_summary(runs))
        print(f"\nresults written to {Path(args.results).resolve()}")
        return 0 if all(run.status == "ok" for run in runs) else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
