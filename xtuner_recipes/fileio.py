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
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists", hint="pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(tmp, path)
        else:
            # link() fails if the name exists, so a file created meanwhile survives.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputExistsError(f"{path} already exists", hint="pass --force to overwrite it") from None
            os.unlink(tmp)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
