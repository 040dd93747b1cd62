"""CLI subcommands, one module per group; importing them only registers argparse definitions."""

from edgepose.commands import export, info, train_eval  # noqa: F401
