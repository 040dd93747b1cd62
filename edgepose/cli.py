"""The ``edgepose`` command line. Subcommands come from a registry; nothing heavy is imported until a
command runs, so ``edgepose --help`` works with no backend (or torch) installed."""

from __future__ import annotations

import argparse
import sys
import warnings

from edgepose import __version__
from edgepose.commands.base import COMMANDS, command  # noqa: F401  (the registry lives with the commands)
from edgepose.errors import EdgeposeError


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (usage + error is two), exit code 2 as before."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings on the command line: one 'warning: ...' line, without the source line they came from."""
    print(f"warning: {message}", file=file or sys.stderr)


def _os_error_line(exc: OSError) -> str:
    """``open('/x/y')`` failing → 'No such file or directory: /x/y' (no traceback for a bad path)."""
    what = exc.strerror or type(exc).__name__
    where = f": {exc.filename}" if exc.filename else ""
    if exc.filename2:
        where += f" -> {exc.filename2}"
    return f"{what}{where} (expected a path that exists, of the right kind, that this user may read / write)"


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" only where the help does not already say what the default is, and never "None"."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def _enable_faulthandler() -> None:
    """A crash inside a native library (segfault, abort) prints the Python stack that called it, not only the
    shell's one-line 'Segmentation fault'."""
    import faulthandler

    if not faulthandler.is_enabled():
        try:
            faulthandler.enable(all_threads=True)
        except (ValueError, AttributeError, OSError):  # no usable stderr (pythonw, some embedded hosts)
            pass


def build_parser() -> argparse.ArgumentParser:
    import edgepose.commands  # noqa: F401  (registers the subcommands; imports nothing heavy)

    parser = _Parser(
        prog="edgepose",
        description="Take trained PyTorch pose models to edge devices: train, evaluate, export, run, bench.",
    )
    parser.add_argument("--version", action="version", version=f"edgepose {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_args, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=_Help)
        add_args(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    warnings.showwarning = _warning_line
    _enable_faulthandler()
    # JAX (imported by the TFLite converter stack) warns on every fork of the quantizer's worker pool
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
    from edgepose.utils.progress import end_open_line
    from edgepose.utils.signals import sigterm_cleans_up

    try:
        try:
            with sigterm_cleans_up():
                return int(args._run(args) or 0)
        except BaseException:
            end_open_line()  # a half-drawn progress bar: the message below starts on its own line
            raise
    except EdgeposeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path the user gave that cannot be read or written
        print(f"error: {_os_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # `python -m edgepose.cli`: run the registry of the importable module
    from edgepose.cli import main as _main

    sys.exit(_main())
