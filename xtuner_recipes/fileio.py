"""Atomic writes that never overwrite without being told to.

For example ``write_atomic(Path("out.py"), "x = 1\\n", force=False)`` writes ``out.py`` unless it exists.
"""

import glob
import os
import stat
import tempfile
from pathlib import Path

from xtuner_recipes.errors import OutputExistsError, RecipeError


def write_atomic(path: Path, text: str, *, force: bool, original: str | None = None) -> None:
    """Write ``text`` to ``path`` in one step: readers see the old file or the new one.

    Without ``force`` an existing ``path`` is left untouched and ``OutputExistsError`` is raised,
    even if it appears while we write. Only a regular file is ever replaced (never a symlink, a
    device or a FIFO); a replaced file keeps its mode, a new one gets the mode the umask gives.
    ``original``: the text ``path`` held when it was read; if it changed since, nothing is written.
    """
    path = Path(path)
    refuse_existing(path, force=force)
    if path.exists() or path.is_symlink():
        refuse_special(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(path.parent, path.name)  # what a killed run of ours left beside it
        fd, tmp = tempfile.mkstemp(prefix=stage_name(path), suffix=".tmp", dir=path.parent)
    except OSError as error:  # a folder we may not write in, or that is no folder: the user's to fix, exit 2
        raise RecipeError(f"cannot write {path}: {error.strerror or error}",
                          hint="name a file in a folder you can write to") from None
    try:
        os.chmod(tmp, _mode_for(path))
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if original is not None and _read_exact(path) != original:
            raise OutputExistsError(f"{path} changed since it was read; nothing was written",
                                    hint="run the command again on the current file")
        publish(Path(tmp), path, force=force)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_exact(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def _mode_for(path: Path) -> int:
    """The mode of the file being replaced, else what the umask gives a new file."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def refuse_special(path: Path) -> None:
    """Raise unless ``path`` is a regular file (not a symlink, device, FIFO or folder)."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise OutputExistsError(f"{path} is a symbolic link; it is not replaced",
                                hint=f"write to its target ({os.path.realpath(path)}) instead")
    if not stat.S_ISREG(info.st_mode):
        raise OutputExistsError(f"{path} is not a regular file; it is not replaced", hint="choose another output")


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


STAGE_MARK = ".xr-stage-"  # temporary folders and files carry it, and the writer's pid


def stage_name(target: Path) -> str:
    """A temporary name beside ``target`` that says whose it is: ``.<name>.xr-stage-<pid>-``."""
    return f".{target.name}{STAGE_MARK}{os.getpid()}-"


def clean_stale(folder: Path, name: str) -> list[Path]:
    """Remove the temporaries of ``name`` in ``folder`` that a killed run left (its pid is gone)."""
    import shutil

    removed = []
    try:
        entries = list(Path(folder).glob(f".{glob.escape(name)}{STAGE_MARK}*"))
    except OSError:
        return removed
    for entry in entries:
        pid = entry.name[len(name) + 1 + len(STAGE_MARK):].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a run of ours that died before this one reused the pid: nothing of it is live
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def swap_folder(stage: Path, target: Path) -> None:
    """Put the finished folder ``stage`` (beside ``target``) in ``target``'s place in one step, so
    readers see the whole old folder or the whole new one; the old one is removed afterwards.
    Linux's renameat2(RENAME_EXCHANGE) swaps two names atomically; elsewhere (or on a file system
    without it) the old folder is renamed away first, which leaves a moment with no folder."""
    import shutil

    if not target.exists():
        os.rename(stage, target)
        return
    if not _exchange(stage, target):
        aside = stage.with_name(stage.name + "old")
        os.rename(target, aside)
        os.rename(stage, target)
        stage = aside
    shutil.rmtree(stage, ignore_errors=True)  # now the old folder


def _exchange(first: Path, second: Path) -> bool:
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0
