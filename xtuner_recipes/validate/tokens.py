"""Token lengths of mapped conversations, through the prompt template and the model's tokenizer."""

import math

from xtuner_recipes.validate.findings import Finding

BATCH = 1000


def load_tokenizer(model_path: str):
    """The model's tokenizer, or ``(None, reason)``."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model_path, trust_remote_code=True), None
    except Exception as error:  # noqa: BLE001 - any tokenizer failure becomes a finding
        return None, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def lengths(conversations: list[dict], tokenizer, template) -> list[int]:
    """Tokens per sample as xtuner encodes it: bos, then each turn's input and output (+ eos)."""
    from xtuner.dataset.map_fns import template_map_fn

    texts, shapes = [], []
    for item in conversations:
        turns = template_map_fn({"conversation": [dict(turn) for turn in item["conversation"]]}, template)["conversation"]
        shapes.append([bool(turn.get("need_eos_token", True)) for turn in turns])
        for turn in turns:
            texts += [turn.get("input", ""), turn.get("output", "") + turn.get("sep", "")]
    counts = []
    for start in range(0, len(texts), BATCH):
        counts += [len(ids) for ids in tokenizer(texts[start:start + BATCH], add_special_tokens=False)["input_ids"]]
    out, position = [], 0
    for eos_flags in shapes:
        total = 1  # bos
        for needs_eos in eos_flags:
            total += counts[position] + counts[position + 1] + int(needs_eos)
            position += 2
        out.append(total)
    return out


def summarize(token_lengths: list[int], max_length: int, pack: bool) -> tuple[dict, list[Finding], int]:
    """Stats, findings and the number of training samples (after packing)."""
    if not token_lengths:
        return {}, [], 0
    ordered = sorted(token_lengths)
    cut = sum(length > max_length for length in ordered)
    stats = {
        "tokens_p50": ordered[len(ordered) // 2],
        "tokens_p95": ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
        "tokens_max": ordered[-1],
        "cut_share": round(cut / len(ordered), 4),
    }
    kept = sum(min(length, max_length) for length in ordered)
    samples = max(1, math.ceil(kept / max_length)) if pack else len(ordered)
    stats["samples_after_packing" if pack else "samples"] = samples
    findings = []
    if cut:
        severity = "warning" if cut / len(ordered) > 0.05 else "info"
        findings.append(Finding("T001", severity, f"{cut} of {len(ordered)} samples ({cut / len(ordered):.1%}) are "
                                f"longer than max_length {max_length} and will be cut", key="max_length"))
    return stats, findings, samples
