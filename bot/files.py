"""Files that appear whole at their path or not at all: a crash or a full disk never leaves
half a report, export or .env behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bot.errors import OperatorError


class UnwritableFile(OperatorError):
    """A file the operator named cannot be written (missing folder rights, full disk)."""


def _temporary_beside(path: Path) -> tuple[int, Path]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UnwritableFile(f"cannot write {path}: {exc.strerror or exc}") from None
    return fd, Path(tmp)


@contextmanager
def atomic_text(path: Path) -> Iterator[IO[str]]:
    """A text file (UTF-8, newlines as written) that appears whole at `path` or not at all."""
    fd, tmp = _temporary_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_binary(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` for a writer that wants a file name (openpyxl, a PDF
    writer); it becomes `path` only when the block ends without an error."""
    fd, tmp = _temporary_beside(path)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    with atomic_text(path) as handle:
        handle.write(text)
