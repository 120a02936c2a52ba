"""Run the checks of a level over one config and collect one report.

Levels: ``static`` (source only, no torch), ``load`` (+ mmengine loads it and its
imports resolve), ``full`` (+ model directory, data, tokens, schedule, machine).
"""

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from xtuner_recipes.validate import static
from xtuner_recipes.validate.context import Context, Options
from xtuner_recipes.validate.findings import DATA_ROW_CODES, ConfigReport, Finding

LEVELS = ("static", "load", "full")


def _full_checks():
    """The checks of a ``full`` run, in order; each is ``check(context) -> (findings, stats)``.
    Later checks read what earlier ones left on the context (the model's config.json, the samples)."""
    from xtuner_recipes.validate import (dataset, environment, host_memory, lr_schedule, memory, model, preflight,
                                         schedule, timing)

    return (preflight.check, model.check, dataset.check, schedule.check, lr_schedule.check, memory.check_config,
            host_memory.check, timing.check, environment.check)


def validate_config(path: str, *, level: str = "full", sample: int | None = None, gpus: int | None = None,
                    strict_env: bool = False, progress: Callable[[str, int, int | None], None] | None = None,
                    gpu_mem: float | None = None, zero_stage: int = 0, tokenizer_process: bool = True,
                    keep: dict | None = None, host_mem: float | None = None,
                    offload: tuple[bool, bool] = (False, False)) -> ConfigReport:
    """Check ``path`` at ``level`` and return every finding (checks never stop at the first).
    ``keep``: a dict that receives the full run's ``Context`` (the HTML report draws from it).

    A check that fails unexpectedly ends the run: ``report.internal_error`` says where, and the
    findings gathered so far are kept.
    """
    report = ConfigReport(config=str(path))
    try:
        source = _read(path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        report.findings.append(Finding("L001", "error", f"cannot read the config: {error}"))
        return report
    tree, flat, findings = static.check(source, str(path))
    report.findings += findings
    if tree is None or level == "static" or any(f.code == "S001" for f in findings):
        return report

    # A second process loads the tokenizer while torch imports; in a process that validates many
    # configs (tokenizer_process=False) the tokenizer is loaded once and kept instead.
    early = _early_tokenizer(flat) if level == "full" and tokenizer_process else None
    stage = "load"
    try:
        from xtuner_recipes.validate import load

        config, findings = load.load(str(path))
        report.findings += findings
        if config is not None:
            report.findings += load.resolve_imports(config)
            report.findings += load.required(config)
        if config is not None and level == "full":
            ctx = Context(str(path), config, tree, flat, Options(sample, gpus, strict_env, progress, gpu_mem,
                                                                 zero_stage, host_mem, offload), early=early)
            if keep is not None:
                keep["context"] = ctx
            for check in _full_checks():
                stage = check.__module__.rsplit(".", 1)[-1]
                findings, stats = check(ctx)
                report.findings += findings
                report.stats.update(stats)
    except Exception as error:  # noqa: BLE001 - our bug, not the user's: say so, keep what was found
        report.internal_error = f"internal error in the {stage} check: {type(error).__name__}: {error}"
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


def _read(path: str) -> str:
    """The config's text; a FIFO, device or folder is refused rather than read (or waited on)."""
    import stat

    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise ValueError(f"{path} is a directory, not a config file")
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file")
    from xtuner_recipes.paths import refuse_large_config

    refuse_large_config(path, os.stat(path).st_size)  # a limit of this tool, not a mistake: exit 2
    return Path(path).read_text(encoding="utf-8")


def _early_tokenizer(flat: dict):
    """Start loading the tokenizer of the model the source names, if it is a local folder,
    so that it loads on another core while mmengine imports torch (see ``tokenizer_process``)."""
    model_path = (flat.get("model.llm.pretrained_model_name_or_path") or flat.get("pretrained_model_name_or_path")
                  or (None,))[0]
    if not (isinstance(model_path, str) and Path(model_path).expanduser().is_dir()):
        return None
    from xtuner_recipes.validate.tokenizer_process import TokenizerProcess

    return TokenizerProcess(model_path)
