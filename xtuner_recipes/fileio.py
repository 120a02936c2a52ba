"""Atomic writes that never overwrite without being told to.

    >>> write_atomic(Path("out.py"), "x = 1\\n", force=False)  # doctest: +SKIP
"""

import os
import tempfile
from pathlib import Path

from xtuner_recipes.errors import OutputExistsError


def write_atomic(path: Path, text: str, *, force: bool) -> None:
    """Write ``text`` to ``path`` in one step: readers see the old file or the new one.

    Without ``force`` an existing ``path`` is left untouched and
    ``OutputExistsError`` is raised, even if it appears while we write.
    """
    path = Path(path)
    refuse_existing(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        publish(Path(tmp), path, force=force)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def refuse_existing(path: Path, *, force: bool) -> None:
    """Raise ``OutputExistsError`` when ``path`` exists and ``force`` is not given."""
    if Path(path).exists() and not force:
        raise OutputExistsError(f"{path} already exists", hint="pass --force to overwrite it")


def publish(tmp: Path, path: Path, *, force: bool) -> None:
    """Give the finished file ``tmp`` (same folder) the name ``path``, in one step."""
    if force:
        os.replace(tmp, path)
        return
    # link() fails if the name exists, so a file created meanwhile survives.
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(f"{path} already exists", hint="pass --force to overwrite it") from None
    os.unlink(tmp)
