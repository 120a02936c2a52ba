"""The model's tokenizer, loaded once per folder and process, as the checks count with it."""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from xtuner_recipes.compat.transformers import rust_backend
from xtuner_recipes.validate.tokens import layout
from xtuner_recipes.validate.tokens.layout import Special


def load_tokenizer(model_path: str):
    """The model's tokenizer, or ``(None, reason)``."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model_path, trust_remote_code=True), None
    except Exception as error:  # noqa: BLE001 - any tokenizer failure becomes a finding
        return None, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


@functools.lru_cache(maxsize=4)
def _loaded(model_path: str, stamp):
    """One load per model folder and process (``validate`` of many configs on one model)."""
    return load_tokenizer(model_path)


def _stamp(model_path: str):
    """What changes when the folder's tokenizer does: the files' names, sizes and times."""
    from pathlib import Path

    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(model_path).iterdir()))
    except OSError:
        return None


@dataclass(frozen=True)
class Counting:
    """A tokenizer, as the checks use it: ``count(texts)`` and the bos/eos ids xtuner adds."""

    count: Callable[[list[str]], list[int]]
    special: Special


def counter(model_path: str, early=None) -> tuple[Counting | None, str | None]:
    """The model's tokenizer as a ``Counting``, or ``(None, reason)``.

    ``early`` is a ``TokenizerProcess`` started before the config loaded; it is used when it
    holds this model's tokenizer. When it could not load one, this process tries: the child
    runs without torch, and the reason reported should be the one training would meet.
    """
    if early is not None and early.model_path == model_path and early.error() is None:
        return Counting(early.count, early.special), None
    tokenizer, reason = _loaded(model_path, _stamp(model_path))
    if tokenizer is None:
        return None, reason
    return Counting(partial(count_tokens, tokenizer), layout.special(tokenizer)), None


def count_tokens(tokenizer, texts: list[str]) -> list[int]:
    """Tokens in each text, without special tokens (xtuner encodes each turn so)."""
    backend = rust_backend(tokenizer)
    if backend is not None:
        # The Rust tokenizer directly: the same ids, without building Python lists for each.
        return [len(encoding) for encoding in backend.encode_batch(texts, add_special_tokens=False)]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
