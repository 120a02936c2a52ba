"""Token lengths of mapped conversations, through the prompt template and the model's tokenizer."""

import functools
import math
from collections.abc import Callable
from functools import partial

from xtuner_recipes.validate.findings import Finding

BATCH = 1000


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


def counter(model_path: str, early=None) -> tuple[Callable[[list[str]], list[int]] | None, str | None]:
    """A function counting tokens with the model's tokenizer, or ``(None, reason)``.

    ``early`` is a ``TokenizerProcess`` started before the config loaded; it is used when it
    holds this model's tokenizer. When it could not load one, this process tries: the child
    runs without torch, and the reason reported should be the one training would meet.
    """
    if early is not None and early.model_path == model_path and early.error() is None:
        return early.count, None
    tokenizer, reason = _loaded(model_path, _stamp(model_path))
    return (None, reason) if tokenizer is None else (partial(count_tokens, tokenizer), None)


def apply_template(turns: list[dict], template: dict) -> list[dict]:
    """The turns as xtuner's template step renders them: system and instruction around the input,
    the suffix after the output, whether an eos follows, the separator.

        >>> apply_template([{"system": "s", "input": "q", "output": "a"}],
        ...                {"SYSTEM": "<{system}>", "INSTRUCTION": "[{input}]", "SUFFIX": "!"})[0]["input"]
        '<s>[q]'
    """
    rendered = []
    for number, turn in enumerate(turns, start=1):
        text = template["INSTRUCTION"].format(input=turn.get("input") or "", round=number)
        if turn.get("system"):
            text = template.get("SYSTEM", "{system}").format(system=turn["system"]) + text
        rendered.append({"input": text, "output": (turn.get("output") or "") + (template.get("SUFFIX") or ""),
                         "need_eos_token": not template.get("SUFFIX_AS_EOS", False), "sep": template.get("SEP", "")})
    return rendered


def count_tokens(tokenizer, texts: list[str]) -> list[int]:
    """Tokens in each text, without special tokens (xtuner encodes each turn so)."""
    backend = getattr(tokenizer, "_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
    if backend is not None:
        # The Rust tokenizer directly: the same ids, without building Python lists for each.
        return [len(encoding) for encoding in backend.encode_batch(texts, add_special_tokens=False)]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def lengths(conversations: list[dict], count: Callable[[list[str]], list[int]], template,
            progress: Callable[[str, int, int | None], None] | None = None) -> tuple[list[int], list[int]]:
    """Tokens per sample as xtuner encodes it (bos, then each turn's input and output, + eos),
    and per sample the tokens before its first output token (bos and the first input);
    ``count`` is ``counter``'s function, ``progress(what, done, total)`` follows the texts."""
    texts, shapes = [], []
    for item in conversations:
        turns = apply_template(item["conversation"], template)
        shapes.append([bool(turn.get("need_eos_token", True)) for turn in turns])
        for turn in turns:
            texts += [turn.get("input", ""), turn.get("output", "") + turn.get("sep", "")]
    counts = []
    for start in range(0, len(texts), BATCH):
        counts += count(texts[start:start + BATCH])
        if progress is not None:
            progress("texts tokenized", len(counts), len(texts))
    out, prompts, position = [], [], 0
    for eos_flags in shapes:
        total = 1  # bos
        prompts.append(1 + (counts[position] if eos_flags else 0))
        for needs_eos in eos_flags:
            total += counts[position] + counts[position + 1] + int(needs_eos)
            position += 2
        out.append(total)
    return out, prompts


def summarize(token_lengths: list[int], max_length: int, pack: bool,
              prompt_lengths: list[int] | None = None) -> tuple[dict, list[Finding], int]:
    """Stats, findings and the number of training samples (after packing).

    A sample whose first output starts at or past ``max_length`` keeps no labelled
    token once cut; xtuner drops it, and when it drops them all training fails with
    ``Column 'length' doesn't exist``.
    """
    if not token_lengths:
        return {}, [], 0
    prompt_lengths = prompt_lengths or [0] * len(token_lengths)
    dropped = sum(prompt >= max_length for prompt in prompt_lengths)
    ordered = sorted(token_lengths)
    cut = sum(length > max_length for length in ordered)
    stats = {
        "tokens_p50": ordered[len(ordered) // 2],
        "tokens_p95": ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
        "tokens_max": ordered[-1],
        "cut_share": round(cut / len(ordered), 4),
    }
    kept_lengths = [length for length, prompt in zip(token_lengths, prompt_lengths) if prompt < max_length]
    kept = sum(min(length, max_length) for length in kept_lengths)
    samples = (max(1, math.ceil(kept / max_length)) if kept else 0) if pack else len(kept_lengths)
    stats["samples_after_packing" if pack else "samples"] = samples
    findings = []
    if dropped:
        everything = dropped == len(token_lengths)
        findings.append(Finding(
            "T003", "error" if everything else "warning",
            f"{dropped} of {len(token_lengths)} samples have no output token within max_length {max_length}: "
            "xtuner drops them" + (", leaving no data (training fails with \"Column 'length' doesn't exist\")"
                                   if everything else ""),
            key="max_length", hint="raise max_length, or shorten the system prompt and inputs"))
    if cut:
        severity = "warning" if cut / len(ordered) > 0.05 else "info"
        findings.append(Finding("T001", severity, f"{cut} of {len(ordered)} samples ({cut / len(ordered):.1%}) are "
                                f"longer than max_length {max_length} and will be cut", key="max_length"))
    return stats, findings, samples
