"""CLI subcommands, one module per group; importing them only registers argparse definitions."""

from edgepose.commands import bench, demo, devices, distill, export, info, run, train_eval, verify  # noqa: F401
