"""Is a path in a config local, or a hub id? One rule for the rewriter, ``gen`` and the validator.

    >>> looks_local("./internlm-chat-7b"), looks_local("internlm/internlm-chat-7b")
    (True, False)
    >>> is_local_data("train.jsonl")
    True
"""

from pathlib import Path

LOCAL_DATA_SUFFIXES = (".json", ".jsonl")
SPREADSHEETS = (".xlsx", ".xls", ".csv")  # what xtuner's json loader can't read; `prepare` converts the tutorial's


def is_spreadsheet(path) -> bool:
    return Path(str(path)).suffix.lower() in SPREADSHEETS


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


def max_config_bytes() -> int:
    """The largest config this tool reads: 10 MB (``XTUNER_RECIPES_MAX_CONFIG_MB`` to change it).
    Real configs are a few KB; a 50 MB list literal costs the parser minutes and gigabytes."""
    import os

    try:
        return int(float(os.environ.get("XTUNER_RECIPES_MAX_CONFIG_MB", "10")) * 2 ** 20)
    except ValueError:
        return 10 * 2 ** 20


def refuse_large_config(path, size: int) -> None:
    from xtuner_recipes.errors import RecipeError

    limit = max_config_bytes()
    if size > limit:
        raise RecipeError(f"{path} is {size / 2 ** 20:.1f} MB: this tool reads configs up to {limit / 2 ** 20:.0f} MB "
                          "(xtuner configs are a few KB); it was not checked",
                          hint="set XTUNER_RECIPES_MAX_CONFIG_MB to read it anyway")
