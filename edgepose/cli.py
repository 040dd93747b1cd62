"""The ``edgepose`` command line. Subcommands come from a registry; nothing heavy is imported until a
command runs, so ``edgepose --help`` works with no backend (or torch) installed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from edgepose import __version__
from edgepose.errors import EdgeposeError

COMMANDS: dict[str, tuple[str, Callable, Callable]] = {}


def command(name: str, help: str):
    """Register ``add_args(parser)`` and ``run(args) -> int`` functions for a subcommand."""

    def deco(add_args: Callable):
        def with_run(run: Callable):
            COMMANDS[name] = (help, add_args, run)
            return run

        return with_run

    return deco


def build_parser() -> argparse.ArgumentParser:
    from edgepose import commands  # noqa: F401  (registers the subcommands; imports nothing heavy)

    parser = argparse.ArgumentParser(
        prog="edgepose",
        description="Take trained PyTorch pose models to edge devices: train, evaluate, export, run, bench.",
    )
    parser.add_argument("--version", action="version", version=f"edgepose {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_args, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        add_args(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except EdgeposeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # `python -m edgepose.cli`: run the registry of the importable module
    from edgepose.cli import main as _main

    sys.exit(_main())
