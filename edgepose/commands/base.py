"""The subcommand registry: each ``edgepose/commands/*.py`` module registers its commands here, and
:mod:`edgepose.cli` builds its parser from :data:`COMMANDS`. Commands never import the CLI module back."""

from __future__ import annotations

from collections.abc import Callable

COMMANDS: dict[str, tuple[str, Callable, Callable]] = {}


def command(name: str, help: str):
    """Register ``add_args(parser)`` and ``run(args) -> int`` functions for a subcommand."""

    def deco(add_args: Callable):
        def with_run(run: Callable):
            COMMANDS[name] = (help, add_args, run)
            return run

        return with_run

    return deco
