"""The data check: every dataset ``train_dataloader.dataset`` builds, read the way its loader reads it,
mapped by its own map function, counted through its own template and tokenizer.

Findings name the dataset by its place in the build (``train_dataloader.dataset.datasets.1``);
stats sum the leaves (a ``ConcatDataset`` trains on all of them) and list each under ``datasets``.
"""

import dataclasses

from xtuner_recipes.validate import data, leaves, tokens
from xtuner_recipes.validate.tally import Tally, TokenizeError
from xtuner_recipes.validate.findings import Finding

PLAIN_TEMPLATE = {"INSTRUCTION": "{input}"}  # no template_map_fn: xtuner encodes the turns as they are


def check(ctx) -> tuple[list[Finding], dict]:
    from xtuner_recipes.validate.load import is_huggingface

    if is_huggingface(ctx.config):  # HF's Trainer takes the top-level train_dataset
        found, unread = leaves.find({"dataset": ctx.raw("train_dataset")}, prefix="train_dataset")
        found, unread = ([dataclasses.replace(x, key=x.key.replace("train_dataset.dataset", "train_dataset", 1))
                          for x in part] for part in (found, unread))
    else:
        found, unread = leaves.find(ctx.raw("train_dataloader"))
    findings = [Finding("D006", "warning", f"{u.key}: data not checked: {u.why}", key=u.key) for u in unread]
    per_leaf, low, high, known, estimated, longest = [], 0, 0, True, False, []
    for leaf in found:
        leaf_findings, stats, samples, leaf_estimated = _check_leaf(ctx, leaf)
        findings += leaf_findings
        per_leaf.append({"key": leaf.key, **stats})
        if samples is None:
            known = False
        else:
            low, high = low + samples[0], high + samples[1]
        estimated |= leaf_estimated
        # The longest sample a batch can pad to: packed samples are max_length long.
        longest.append(leaf.get("max_length") if leaf.setting("pack_to_max_length") else stats.get("longest_sample"))
    stats: dict = {}
    if per_leaf:
        stats["datasets"] = per_leaf
        stats["data_files"] = [f for leaf in per_leaf for f in leaf.get("data_files", [])]
        for name in ("rows", "usable_rows", "rows_checked"):
            if any(name in leaf for leaf in per_leaf):
                stats[name] = sum(leaf.get(name, 0) for leaf in per_leaf)
        if len(per_leaf) == 1:  # one dataset: its token figures are the config's
            stats.update({k: v for k, v in per_leaf[0].items()
                          if k.startswith(("tokens_", "cut_share", "samples", "input_", "output_", "longest_"))})
    if found and known and not unread:
        ctx.samples, ctx.samples_range, ctx.samples_estimated = low, (low, high), estimated
    if found and not unread and all(_is_int(n) for n in longest):
        ctx.longest_sample = max(longest)
    ctx.padded_batches = any(not leaf.setting("pack_to_max_length") for leaf in found)
    if found and not unread and len(ctx.tallies) == len(found):
        import numpy as np

        ctx.sample_lengths = np.concatenate([np.frombuffer(t.kept, dtype=np.int32) for _, t in ctx.tallies])
    return findings, stats


def _check_leaf(ctx, leaf) -> tuple[list[Finding], dict, tuple[int, int] | None, bool]:
    """Findings, stats, the (fewest, most) training samples (None when unknown) and whether they
    are an estimate."""
    source = data.source(leaf.get("dataset"), f"{leaf.key}.dataset")
    findings = [source.finding] if source.finding else []
    if source.files is None:
        findings.append(Finding("D006", "warning", f"{leaf.key}: data not checked: {source.unread}",
                                key=f"{leaf.key}.dataset"))
        return findings, {}, None, False
    map_fn, why = _map_fn(leaf.get("dataset_map_fn"))
    if getattr(map_fn, "__name__", None) == "msagent_react_map_fn":
        # xtuner's MS-Agent mapper eval()s each row: check the rows with ours, which parses them
        # (equal on well-formed rows, tests/test_map_fns_msagent.py), and say what training will do.
        from xtuner_recipes.map_fns import msagent_map_fn as map_fn

        findings.append(Finding("D009", "warning", f"{leaf.key}: xtuner's msagent_react_map_fn runs eval() on every "
                                "row's `conversations`: training executes whatever the data holds (checked here "
                                "without evaluating)", key=f"{leaf.key}.dataset_map_fn",
                                hint="use xtuner_recipes.map_fns.msagent_map_fn, which parses the rows"))
    if why is not None:
        findings.append(Finding("D008", "error" if why.startswith("names") else "info",
                                f"{leaf.key}.dataset_map_fn {why}", key=f"{leaf.key}.dataset_map_fn",
                                hint="import the map function in the config (from xtuner.dataset.map_fns import ...)"))
        return findings, {"data_files": source.files}, None, False
    max_length, pack = leaf.get("max_length"), bool(leaf.setting("pack_to_max_length"))
    tally, findings = _tally(ctx, leaf, max_length, findings)
    try:
        scan = data.scan(source.files, map_fn, sample=ctx.options.sample, progress=ctx.options.progress,
                         key=f"{leaf.key}.dataset", sink=tally.add if tally is not None else None)
        counted = None
        if tally is not None and scan.usable:
            counted = tally.finish(pack=pack, num_proc=_num_proc(leaf), shuffle=bool(leaf.setting("shuffle_before_pack")))
            ctx.tallies.append((leaf.key, tally))
    except TokenizeError as error:  # the tokenizer (or xtuner's template) failing on the data: a finding
        findings.append(Finding("T002", "error", f"the tokenizer fails on the data: {error}",
                                key=f"{leaf.key}.tokenizer.pretrained_model_name_or_path"))
        scan, counted = data.scan(source.files, map_fn, sample=ctx.options.sample, key=f"{leaf.key}.dataset"), None
    finally:
        if tally is not None:
            tally.close()
    findings += scan.findings
    stats = {"data_files": scan.files, "rows": scan.rows, "usable_rows": scan.usable}
    if scan.sampled_rows is not None:
        stats["rows_checked"] = scan.sampled_rows
    samples, estimated = (scan.usable, scan.usable), scan.sampled_rows is not None
    if counted is not None:
        token_stats, found, samples = counted
        stats.update(token_stats)
        tokenizer_key = f"{leaf.key}.tokenizer.pretrained_model_name_or_path"
        findings += [dataclasses.replace(f, key=tokenizer_key) if f.code == "T005" else f for f in found]
    elif pack:
        return findings, stats, None, estimated  # packed samples need the token counts
    if estimated and scan.sampled_rows:
        samples = tuple(round(n * scan.rows / scan.sampled_rows) for n in samples)  # extrapolate to every row
    cap = leaf.setting("max_dataset_length")
    if _is_int(cap) and 0 <= cap < scan.rows:
        # xtuner trains on `cap` rows drawn at random: the counts scale, as an estimate
        samples, estimated = tuple(round(n * cap / scan.rows) for n in samples), True
    return findings, stats, samples, estimated


def _tally(ctx, leaf, max_length, findings):
    """A ``Tally`` for the leaf's template and tokenizer, or None (with the finding saying why)."""
    if not _is_int(max_length):
        return None, findings
    template, why = _template(leaf)
    counting, reason = _counter(ctx, leaf)
    if template is None:
        return None, findings + [Finding("T004", "info", f"{leaf.key}: tokens not counted: {why}",
                                         key=f"{leaf.key}.template_map_fn")]
    if counting is None:
        if reason is None:
            return None, findings
        return None, findings + [Finding("T002", "error", f"the tokenizer fails to load: {reason}",
                                         key=f"{leaf.key}.tokenizer.pretrained_model_name_or_path")]
    if counting.special.failure:
        return None, findings + [Finding("T005", "error", counting.special.failure,
                                         key=f"{leaf.key}.tokenizer.pretrained_model_name_or_path",
                                         hint="set the tokenizer's bos_token/eos_token (tokenizer_config.json)")]
    return Tally(counting, None if template is PLAIN_TEMPLATE else template, max_length,
                 ctx.options.progress), findings


def _num_proc(leaf) -> int | None:
    value = leaf.setting("map_num_proc")
    return value if _is_int(value) and value > 0 else None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _map_fn(value):
    """The leaf's map function as xtuner's ``process_hf_dataset`` resolves it, or (None, why not)."""
    if value is None or callable(value) and type(value).__name__ not in ("LazyObject", "LazyAttr"):
        return value, None
    if type(value).__name__ in ("LazyObject", "LazyAttr"):
        light = _light_map_fn(value)
        if light is not None:
            return light, None
        try:
            return value.build(), None
        except Exception as error:  # noqa: BLE001 - reported by L002; the rows can't be mapped without it
            return None, f"did not import ({type(error).__name__}: {error}): the rows were not mapped"
    if isinstance(value, str):
        from mmengine.utils.misc import get_object_from_string
        from xtuner.registry import MAP_FUNC

        found = MAP_FUNC.get(value) or get_object_from_string(value)
        if found is not None:
            return found, None
        return None, (f"names {value!r}, which is neither registered in xtuner's MAP_FUNC nor an importable dotted "
                      "path: process_hf_dataset raises TypeError")
    return None, f"is a {type(value).__name__}, not a function: the rows were not mapped"


def _light_map_fn(value):
    """One of xtuner's own map functions, compiled from its source without importing ``xtuner.dataset``
    (seconds of torch and model imports) when nothing has imported it yet."""
    import sys

    from xtuner_recipes.xtuner_info import map_function

    module, name = getattr(value, "_module", None), getattr(value, "_imported", None)
    if not (isinstance(module, str) and module.startswith("xtuner.dataset.map_fns") and isinstance(name, str)):
        return None
    return None if "xtuner.dataset" in sys.modules else map_function(name)


def _template(leaf):
    """The leaf's prompt template dict, or (None, why not). ``PROMPT_TEMPLATE.x`` is read from
    xtuner's source (importing ``xtuner.utils`` costs a second)."""
    from xtuner_recipes.xtuner_info import prompt_template

    factory = leaf.get("template_map_fn")
    if factory is None:
        return PLAIN_TEMPLATE, None
    if not isinstance(factory, dict):
        return None, "its template_map_fn is not a template_map_fn_factory dict"
    template = dict.get(factory, "template")
    if type(template).__name__ == "LazyAttr" and leaves.qualified(template.source) == "PROMPT_TEMPLATE":
        found = prompt_template(template.name)
        return (found, None) if found else (None, f"xtuner has no PROMPT_TEMPLATE.{template.name} (see S004)")
    if type(template).__name__ in ("LazyObject", "LazyAttr"):
        try:
            template = template.build()
        except Exception as error:  # noqa: BLE001 - an unknown template: reported by S004/L002
            return None, f"its template did not resolve ({type(error).__name__}: {error})"
    if isinstance(template, dict) and "INSTRUCTION" in template:
        return dict(template), None
    return None, "its template is not a dict with an INSTRUCTION"


def _counter(ctx, leaf):
    """A token counter for the leaf's tokenizer, or (None, reason)."""
    from pathlib import Path

    tokenizer = leaf.get("tokenizer")
    path = dict.get(tokenizer, "pretrained_model_name_or_path") if isinstance(tokenizer, dict) else None
    path = path if isinstance(path, str) else ctx.get("pretrained_model_name_or_path")
    if not isinstance(path, str) or not Path(path).expanduser().is_dir():
        return None, None  # a hub id or nothing: M001/M002 say so
    return tokens.counter(path, ctx.early)  # loaded once per folder and process (tokens._loaded)
