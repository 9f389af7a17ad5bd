"""Making a rename or a new file's name survive power loss: the directory holding it is
fsynced too (a file's own fsync covers its bytes, not the entry that names it)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
