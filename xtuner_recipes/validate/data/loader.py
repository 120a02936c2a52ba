"""What a dataset's loader reads: the local files a ``load_dataset``-style dict names, as the installed
``datasets`` takes them, or why this tool can't read them here.

    >>> source({"type": "load_dataset", "path": "json", "data_files": "train.jsonl"}, "k").files
    ['train.jsonl']
"""

import glob
from dataclasses import dataclass
from pathlib import Path

from xtuner_recipes.findings import Finding
from xtuner_recipes.paths import looks_local


@dataclass(frozen=True)
class Source:
    """What a dataset's loader reads: local ``files``, or why it can't be read here (``unread``),
    and a finding when ``datasets`` itself would fail on the loader's arguments."""

    files: list[str] | None = None
    unread: str | None = None
    finding: Finding | None = None


JSON_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
READERS = ("load_dataset", "load_jsonl_dataset")  # datasets' loader, and xtuner's JSONL one


def source(loader, key: str) -> Source:
    """The local files a ``load_dataset``-style dict reads, as the installed ``datasets`` takes them."""
    from xtuner_recipes.validate.data.leaves import qualified

    if not isinstance(loader, dict):
        return Source(unread=f"its dataset is {type(loader).__name__}, not a loader dict")
    get = lambda name: dict.get(loader, name)  # noqa: E731 - raw access: nothing lazy is built
    kind = qualified(get("type")) or ""
    if kind.endswith("MsDataset.load"):
        return Source(unread=f"it loads {get('dataset_name')!r} from the ModelScope hub")
    if kind.rsplit(".", 1)[-1] not in READERS or kind.count(".") and not kind.startswith(("datasets.", "xtuner.")):
        return Source(unread=f"it is loaded by {kind or 'an unnamed loader'}, which this tool does not read "
                             f"(it reads {', '.join(READERS)})")
    files, path = get("data_files"), get("path")
    if files is not None:
        if isinstance(path, str) and path != "json" and not path.endswith(JSON_SUFFIXES):
            return Source(unread=f"it reads {path!r} files; this tool reads JSON and JSONL")
        return Source(files=_expand(files))
    folder = get("data_dir")
    if folder is None and isinstance(path, str) and Path(path).expanduser().is_file():
        fix = f"load_dataset('json', data_files={path!r})"
        return Source(files=[path], finding=Finding(
            "D007", "error", f"load_dataset(path={path!r}) is given a file: the datasets library only takes a folder "
            "or a hub id as path, and fails (\"Couldn't find any data file\" or a hub lookup)",
            key=f"{key}.path", hint=f"use {fix}"))
    folder = folder if folder is not None else path
    if not isinstance(folder, str):
        return Source(unread="its loader names no path this tool can see")
    if folder == "json":
        return Source(unread="it loads 'json' with neither data_files nor data_dir")
    if Path(folder).expanduser().is_dir():
        names = sorted(str(p) for p in Path(folder).expanduser().iterdir() if p.name.endswith(JSON_SUFFIXES))
        train = [n for n in names if "train" in Path(n).name]
        return Source(files=train or names)
    if looks_local(folder) or folder.endswith(JSON_SUFFIXES) or get("data_dir") is not None:
        return Source(files=[folder])  # a local path that is missing: reported as D001
    return Source(unread=f"it loads {folder!r} from the Hugging Face hub, and there is no local copy to read")


def _expand(files) -> list[str]:
    """``data_files`` as ``datasets`` takes it: a string, a list, or a dict of split -> either;
    globs expanded. Only the train split is read when the dict names one."""
    if isinstance(files, dict):
        files = dict.get(files, "train", None) or [v for value in dict.values(files) for v in _as_list(value)]
    found = []
    for pattern in _as_list(files):
        found += sorted(glob.glob(str(Path(str(pattern)).expanduser()))) or [str(pattern)]
    return found


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]
