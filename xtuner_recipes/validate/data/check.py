"""The data check: every dataset ``train_dataloader.dataset`` builds, read the way its loader reads it,
mapped by its own map function, counted through its own template and tokenizer.

Findings name the dataset by its place in the build (``train_dataloader.dataset.datasets.1``);
stats sum the leaves (a ``ConcatDataset`` trains on all of them) and list each under ``datasets``.
"""

import dataclasses

from xtuner_recipes.compat.mmengine import is_lazy, lazy_import
from xtuner_recipes.findings import Finding
from xtuner_recipes.validate.checks import Result, check
from xtuner_recipes.validate.data import leaves, loader, scan as data
from xtuner_recipes.validate.inputs import Samples
from xtuner_recipes.values import is_int, is_positive_int
from xtuner_recipes.validate.tokens import tokenizer as tokens
from xtuner_recipes.validate.tokens.tally import Tally, TokenizeError

PLAIN_TEMPLATE = {"INSTRUCTION": "{input}"}  # no template_map_fn: xtuner encodes the turns as they are


CODES = ("D001", "D002", "D003", "D004", "D005", "D006", "D007", "D008", "D009", "D010", "D011",
         "T001", "T002", "T003", "T004", "T005")


@check("data", level="full", codes=CODES, reads=("settings", "options", "early"), provides=("samples",))
def data_check(settings, options, early) -> Result:
    if settings.huggingface:  # HF's Trainer takes the top-level train_dataset
        found, unread = leaves.find({"dataset": settings.train_dataset}, prefix="train_dataset")
        found, unread = ([dataclasses.replace(x, key=x.key.replace("train_dataset.dataset", "train_dataset", 1))
                          for x in part] for part in (found, unread))
    else:
        found, unread = leaves.find(settings.train_dataloader)
    findings = [Finding("D006", "warning", f"{u.key}: data not checked: {u.why}", key=u.key) for u in unread]
    per_leaf, low, high, known, estimated, longest, tallies = [], 0, 0, True, False, [], []
    for leaf in found:
        leaf_findings, stats, samples, leaf_estimated = _check_leaf(leaf, settings, options, early, tallies)
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
    counted = bool(found) and not unread
    lengths = None
    if counted and len(tallies) == len(found):
        import numpy as np

        lengths = np.concatenate([np.frombuffer(t.kept, dtype=np.int32) for _, t in tallies])
    samples = Samples(
        count=low if counted and known else None, range=(low, high) if counted and known else None,
        estimated=estimated if counted and known else False,
        padded=any(not leaf.setting("pack_to_max_length") for leaf in found),
        longest=max(longest) if counted and all(is_int(n) for n in longest) else None,
        lengths=lengths, tallies=tuple(tallies))
    if found:
        stats["packed"] = not samples.padded
    return Result(findings, stats, {"samples": samples})


def _check_leaf(leaf, settings, options, early, tallies: list) -> tuple[list[Finding], dict, tuple[int, int] | None, bool]:
    """Findings, stats, the (fewest, most) training samples (None when unknown) and whether they
    are an estimate; the leaf's ``(key, Tally)`` joins ``tallies`` when its tokens were counted."""
    source = loader.source(leaf.get("dataset"), f"{leaf.key}.dataset")
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
    tally, findings = _tally(leaf, max_length, findings, settings, options, early)
    try:
        scan = data.scan(source.files, map_fn, sample=options.sample, progress=options.progress,
                         key=f"{leaf.key}.dataset", sink=tally.add if tally is not None else None)
        counted = None
        if tally is not None and scan.usable:
            counted = tally.finish(pack=pack, num_proc=_num_proc(leaf), shuffle=bool(leaf.setting("shuffle_before_pack")))
            tallies.append((leaf.key, tally))
    except TokenizeError as error:  # the tokenizer (or xtuner's template) failing on the data: a finding
        findings.append(Finding("T002", "error", f"the tokenizer fails on the data: {error}",
                                key=f"{leaf.key}.tokenizer.pretrained_model_name_or_path"))
        scan, counted = data.scan(source.files, map_fn, sample=options.sample, key=f"{leaf.key}.dataset"), None
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
    if is_int(cap) and 0 <= cap < scan.rows:
        # xtuner trains on `cap` rows drawn at random: the counts scale, as an estimate
        samples, estimated = tuple(round(n * cap / scan.rows) for n in samples), True
    return findings, stats, samples, estimated


def _tally(leaf, max_length, findings, settings, options, early):
    """A ``Tally`` for the leaf's template and tokenizer, or None (with the finding saying why)."""
    if not is_int(max_length):
        return None, findings
    template, why = _template(leaf)
    counting, reason = _counter(leaf, settings.model_path, early)
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
                 options.progress), findings


def _num_proc(leaf) -> int | None:
    value = leaf.setting("map_num_proc")
    return value if is_positive_int(value) else None


def _map_fn(value):
    """The leaf's map function as xtuner's ``process_hf_dataset`` resolves it, or (None, why not)."""
    if value is None or callable(value) and not is_lazy(value):
        return value, None
    if is_lazy(value):
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

    if type(value).__name__ != "LazyObject":
        return None
    modules, name = lazy_import(value)
    if not (len(modules) == 1 and modules[0].startswith("xtuner.dataset.map_fns") and isinstance(name, str)):
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
    if is_lazy(template):
        try:
            template = template.build()
        except Exception as error:  # noqa: BLE001 - an unknown template: reported by S004/L002
            return None, f"its template did not resolve ({type(error).__name__}: {error})"
    if isinstance(template, dict) and "INSTRUCTION" in template:
        return dict(template), None
    return None, "its template is not a dict with an INSTRUCTION"


def _counter(leaf, model_path, early):
    """A token counter for the leaf's tokenizer (else the model's), or (None, reason)."""
    from pathlib import Path

    tokenizer = leaf.get("tokenizer")
    path = dict.get(tokenizer, "pretrained_model_name_or_path") if isinstance(tokenizer, dict) else None
    path = path if isinstance(path, str) else model_path
    if not isinstance(path, str) or not Path(path).expanduser().is_dir():
        return None, None  # a hub id or nothing: M001/M002 say so
    return tokens.counter(path, early)  # loaded once per folder and process (tokens.tokenizer's cache)
