"""Output helpers: every file perpsim writes is written atomically, with the user's umask."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _create_exclusive(folder: Path, name: str) -> tuple[int, Path]:
    """Opens a new, uniquely named file in ``folder`` for writing; returns its fd and path.

    The file is created with mode 0666 and the kernel applies the process's umask, as for any
    file a program writes (``tempfile.mkstemp`` would make every output 0600).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` atomically when the block ends without an error.

    The file is written in the same folder under a temporary name, flushed to disk and renamed
    over ``path``; on an error (or an interruption) it is removed and ``path`` is left as it
    was. For outputs written in pieces, so that no whole copy of them is held in memory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_exclusive(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename).

    A reader never sees a half-written file, and an interrupted write leaves the old file. The
    file's permissions follow the umask (0644 under the usual 022), so a teammate can read it.
    """
    with atomic_writer(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
