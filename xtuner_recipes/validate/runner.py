"""Run the checks of a level over one config and collect one report.

Levels: ``static`` (source only, no torch), ``load`` (+ mmengine loads it and its
imports resolve), ``full`` (+ model directory, data, tokens, schedule, machine).
"""

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from xtuner_recipes.validate import static
from xtuner_recipes.validate.findings import DATA_ROW_CODES, ConfigReport, Finding

LEVELS = ("static", "load", "full")


def validate_config(path: str, *, level: str = "full", sample: int | None = None, gpus: int | None = None,
                    strict_env: bool = False, progress: Callable[[str, int, int | None], None] | None = None,
                    gpu_mem: float | None = None, zero_stage: int = 0) -> ConfigReport:
    """Check ``path`` at ``level`` and return every finding (checks never stop at the first)."""
    report = ConfigReport(config=str(path))
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        report.findings.append(Finding("L001", "error", f"cannot read the config: {error}"))
        return report
    tree, flat, findings = static.check(source, str(path))
    report.findings += findings
    if tree is None or level == "static" or any(f.code == "S001" for f in findings):
        return report

    early = _early_tokenizer(flat) if level == "full" else None
    try:
        from xtuner_recipes.validate import load

        config, findings = load.load(str(path))
        report.findings += findings
        if config is None:
            return report
        report.findings += load.resolve_imports(config)
        if level == "load":
            return report
        _full(report, config, tree, flat, early=early, sample=sample, gpus=gpus, strict_env=strict_env,
              progress=progress, gpu_mem=gpu_mem, zero_stage=zero_stage)
    finally:
        if early is not None:
            early.close()
    # Checks past the source know the setting, not the line: find it once, here.
    report.findings = [
        dataclasses.replace(f, line=static.line_of(flat, tree, f.key))
        if f.key and f.line is None and f.code not in DATA_ROW_CODES else f
        for f in report.findings
    ]
    return report


def _early_tokenizer(flat: dict):
    """Start loading the tokenizer of the model the source names, if it is a local folder,
    so that it loads on another core while mmengine imports torch (see ``tokenizer_process``)."""
    model_path = (flat.get("model.llm.pretrained_model_name_or_path") or flat.get("pretrained_model_name_or_path")
                  or (None,))[0]
    if not _is_folder(model_path):
        return None
    from xtuner_recipes.validate.tokenizer_process import TokenizerProcess

    return TokenizerProcess(model_path)


def _is_folder(model_path) -> bool:
    """A model path naming a folder here (a hub id, or nothing there, has no tokenizer to count with)."""
    return isinstance(model_path, str) and Path(model_path).expanduser().is_dir()


def _gpus(gpus: int | None) -> int:
    if gpus:
        return gpus
    try:
        return max(1, int(os.environ.get("NPROC_PER_NODE", "1")) * int(os.environ.get("NNODES", "1")))
    except ValueError:
        return 1


def _full(report, config, tree, flat, *, early, sample, gpus, strict_env, progress, gpu_mem, zero_stage) -> None:
    from xtuner_recipes.validate import data, environment, load, memory, model, schedule, tokens

    get = lambda key: load.lookup(config, key)  # noqa: E731 - a short local accessor
    model_path = get("model.llm.pretrained_model_name_or_path") or get("pretrained_model_name_or_path")
    max_length = get("train_dataset.max_length") or get("max_length")
    template_name = static.template_name(tree)
    found, stats, model_config = model.check_model(model_path, max_length=max_length, template=template_name)
    report.findings += found
    report.stats.update(stats)

    dataset = get("train_dataset.dataset")  # read raw below: building its `type` would import datasets
    files, why_not = data.data_files(dict(dict.items(dataset))) if dataset is not None else (None, "no train_dataset.dataset")
    if files is None:
        report.findings.append(Finding("D006", "warning", f"data not checked: the config {why_not}", key="data_path"))
    else:
        scan = data.scan(files, _map_fn(get("train_dataset.dataset_map_fn")), sample=sample, progress=progress)
        report.findings += scan.findings
        report.stats.update({"data_files": scan.files, "rows": scan.rows, "usable_rows": len(scan.usable)})
        samples = len(scan.usable)
        pack = bool(get("train_dataset.pack_to_max_length"))
        if scan.usable and isinstance(max_length, int):
            count, reason = tokens.counter(model_path, early) if _is_folder(model_path) else (None, None)
            if count is None and reason is not None:
                report.findings.append(Finding("T002", "error", f"the tokenizer fails to load: {reason}",
                                               key="pretrained_model_name_or_path"))
            elif count is not None:
                try:
                    lengths, prompts = tokens.lengths(scan.usable, count, _template(template_name, get), progress)
                except Exception as error:  # noqa: BLE001 - a tokenizer failing on the data is a finding
                    report.findings.append(Finding("T002", "error", f"the tokenizer fails on the data: {error}",
                                                   key="pretrained_model_name_or_path"))
                else:
                    stats, found, samples = tokens.summarize(lengths, max_length, pack, prompts)
                    report.stats.update(stats)
                    report.findings += found
        stats, found = schedule.plan(
            samples, batch_size=get("train_dataloader.batch_size"), gpus=_gpus(gpus),
            max_epochs=get("train_cfg.max_epochs") or get("max_epochs"), warmup_ratio=get("warmup_ratio") or 0,
            save_steps=get("default_hooks.checkpoint.interval"),
            save_total_limit=get("default_hooks.checkpoint.max_keep_ckpts"), evaluation_freq=get("evaluation_freq"),
            accumulative_counts=get("optim_wrapper.accumulative_counts") or 1,
        )
        report.stats.update(stats)
        report.findings += found
    if isinstance(max_length, int) and model_config is not None:
        run = memory.run_from_config(get, max_length=max_length, gpus=_gpus(gpus), zero_stage=zero_stage)
        stats, found = memory.check(model_config, run, gpu_mem=gpu_mem)
        report.stats.update(stats)
        report.findings += found
    report.findings += environment.check_environment(
        quantized=get("model.llm.quantization_config") is not None, uses_lora=get("model.lora") is not None,
        strict=strict_env,
    )


def _template(name: str | None, get):
    """The prompt template's dict: read from xtuner's source when the config names one of
    ``PROMPT_TEMPLATE`` (importing ``xtuner.utils`` costs a second), else the config's own."""
    from xtuner_recipes.xtuner_info import prompt_template

    return (prompt_template(name) if name else None) or dict(get("prompt_template"))


def _map_fn(value):
    """The config's dataset_map_fn as a callable (strings looked up as xtuner does), or None."""
    if value is None or callable(value):
        return value
    from mmengine.utils.misc import get_object_from_string
    from xtuner.registry import MAP_FUNC

    return MAP_FUNC.get(value) or get_object_from_string(value)
