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
