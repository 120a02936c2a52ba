"""Is a path in a config local, or a hub id? One rule for the rewriter, ``gen`` and the validator.

    >>> looks_local("./internlm-chat-7b"), looks_local("internlm/internlm-chat-7b")
    (True, False)
    >>> is_local_data("train.jsonl")
    True
"""

from pathlib import Path

LOCAL_DATA_SUFFIXES = (".json", ".jsonl")


def looks_local(path: str) -> bool:
    """A path that exists here or is written as one (``./x``, ``../x``, ``/x``, ``~/x``)."""
    return path.startswith((".", "/", "~")) or Path(path).expanduser().exists()


def is_local_data(path: str) -> bool:
    """Whether a data path names local JSON files rather than a hub dataset id."""
    return looks_local(path) or path.endswith(LOCAL_DATA_SUFFIXES)


def is_data_folder(path: str) -> bool:
    """A local data path that is (or, not existing yet, will be) a folder of JSON files."""
    candidate = Path(path).expanduser()
    return candidate.is_dir() if candidate.exists() else not path.endswith(LOCAL_DATA_SUFFIXES)
