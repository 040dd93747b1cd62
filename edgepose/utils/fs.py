"""File-system helpers shared by the writers that go through a temporary file or folder."""

from __future__ import annotations

import os
from pathlib import Path


def umask_mode(directory: bool) -> int:
    """The permissions a plain ``open`` / ``mkdir`` would give under the current umask.

    ``tempfile.mkstemp`` / ``mkdtemp`` create private (0600 / 0700) entries; a bundle, checkpoint or
    report renamed into place from one of them would stay unreadable to a deploy user or a service."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def make_public(path: str | Path) -> None:
    """chmod ``path`` (a temporary file or folder about to be renamed into place) to the umask's mode."""
    p = Path(path)
    os.chmod(p, umask_mode(p.is_dir()))


def existing_parent(path: str | Path) -> Path:
    """The nearest folder-or-file above ``path`` that exists (where a mkdir -p would start)."""
    return next(a for a in Path(path).absolute().parents if a.exists())


def check_output_file(path: str | Path | None, flag: str, suffixes: tuple[str, ...] | None = None, *,
                      creates_folders: bool = False) -> None:
    """Refuse, before any work, a file path an output cannot be written to: an unsupported extension, a
    directory, a parent that is a file, a read-only folder, and a missing folder unless the writer
    ``creates_folders``. ConfigErrors name ``flag``."""
    from edgepose.errors import ConfigError

    if path is None:
        return
    p = Path(path)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise ConfigError(f"{flag} {path}: unsupported extension {p.suffix or '(none)'!r}; expected one of "
                          f"{', '.join(suffixes)}")
    if p.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; expected a file path")
    above = existing_parent(p)
    if not above.is_dir():
        raise ConfigError(f"{flag} {path}: {above} is a file; expected a path whose existing parents are folders")
    if above != p.absolute().parent and not creates_folders:
        raise ConfigError(f"{flag} {path}: folder {p.parent} does not exist; expected a file in an existing folder")
    if not os.access(above, os.W_OK):
        raise ConfigError(f"{flag} {path}: folder {above} is not writable by this user")
