"""Render reports: text for people (grouped by config, colour on a terminal), JSON for machines.

The JSON keys are public API, documented in ``schemas/report.schema.json``.
"""

import json
import os

from xtuner_recipes.findings import DATA_ROW_CODES, SEVERITIES
from xtuner_recipes.validate.estimate.gpu import FIT_MARGIN, fit_verdict

_COLOURS = {"error": "31", "warning": "33", "info": "36", "ok": "32"}


def _paint(text: str, what: str, colour: bool) -> str:
    return f"\033[{_COLOURS[what]}m{text}\033[0m" if colour else text


def use_colour(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def render_text(reports, *, colour: bool = False) -> str:
    lines = []
    for report in reports:
        lines.append(f"{report.config}: " + (_paint("ok", "ok", colour) if report.ok else _paint("FAILED", "error", colour)))
        lines += [f"  {line}" for line in machine_lines(report.machine)]
        for f in report.findings:
            # A data row's line belongs to the data file, which its message names.
            where = f"{report.config}:{f.line}" if f.line and f.code not in DATA_ROW_CODES else report.config
            key = f" [{f.key}]" if f.key else ""
            lines.append(f"  {where}: {_paint(f.severity, f.severity, colour)} {f.code}{key} {f.message}")
            if f.hint:
                lines.append(f"      hint: {f.hint}")
        lines += [f"  {line}" for line in summary(report.stats)]
        if report.stats:
            shown = {k: v for k, v in report.stats.items() if k != "data_files"}
            lines.append("  stats: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    counts = {s: sum(f.severity == s for r in reports for f in r.findings) for s in SEVERITIES}
    failed = sum(not r.ok for r in reports)
    lines.append(f"{len(reports)} config(s), {failed} failed: {counts['error']} error(s), "
                 f"{counts['warning']} warning(s), {counts['info']} note(s)")
    return "\n".join(lines) + "\n"


def machine_lines(machine: dict | None) -> list[str]:
    """This machine's verdict in words, with the command that fixes each problem.

        >>> machine_lines({"ok": False, "problems": [{"code": "E003", "message": "deepspeed is not installed",
        ...                                           "fix": "pip install deepspeed==0.16.2"}]})
        ['this machine: cannot launch it now (the config itself may be fine):', '  E003 deepspeed is not installed; fix: pip install deepspeed==0.16.2']
    """
    if machine is None:
        return []
    if machine["ok"]:
        return ["this machine: can launch it (doctor finds nothing missing)"]
    return ["this machine: cannot launch it now (the config itself may be fine):"] + [
        f"  {p['code']} {p['message']}" + (f"; fix: {p['fix']}" if p.get("fix") else "") for p in machine["problems"]]


CARDS_GB = (8, 12, 16, 24, 40, 48, 80, 141)  # the common cards' memory
ACTIVATION_PARTS = ("activation_checkpoints", "layer_recompute", "logits_and_loss")


def launch_words(launch: dict | None) -> str:
    """The launch the figures are for: " for --deepspeed deepspeed_zero2 (ZeRO-2) on 1 GPU"."""
    if not launch:
        return ""
    gpus = f" on {launch['gpus']} GPU{'s' if launch['gpus'] > 1 else ''}"
    if launch["deepspeed"] is None:
        return f" for a launch without DeepSpeed{gpus}" if not launch["zero_stage"] else f" for ZeRO-{launch['zero_stage']}{gpus}"
    return f" for --deepspeed {launch['deepspeed']} (ZeRO-{launch['zero_stage']}){gpus}"


def duration(hours: float) -> str:
    """``hours`` in words: ``1.5 h``, ``12 min``, ``40 s``."""
    if hours >= 1:
        return f"{hours:.1f} h"
    return f"{hours * 60:.0f} min" if hours * 60 >= 1 else f"{hours * 3600:.0f} s"


# the text's word for an iteration the host's launches pace (stats.time_basis says more)
HOST_BOUND = "; the host's launches set this pace, and hosts differ: `xtuner-recipes calibrate` measures this one"


def _where(stats: dict) -> str:
    gpus = stats.get("time_gpus") or 1
    return f"one {stats['time_card']}" if gpus == 1 else f"{gpus} x {stats['time_card']}"


def whole_run_line(stats: dict) -> str | None:
    """``time: ~N for the whole run on CARD (parts), range A–B``: validate's line, which plan prints too."""
    if stats.get("run_hours") is None:
        return None
    scaled = f" ({scaled_words(stats)})" if stats.get("time_scaled") else ""
    low, high = stats["run_hours_range"]
    return (f"time: ~{duration(stats['run_hours'])} for the whole run on {_where(stats)}{scaled} "
            f"({run_parts(stats)}), range {duration(low)}–{duration(high)}")


def scaled_words(stats: dict) -> str:
    """What a time on a card no run measured rests on, in the words the text and the report use."""
    from xtuner_recipes.validate.estimate.timing import scaled_words as words

    return words(stats["time_measured_on"])


def run_parts(stats: dict) -> str:
    """The whole run's parts in words, each at the answer inside its range (``run_point_s``: the middle, evaluation
    at its fast end): ``iterations 1.2 h, evaluation 3 min, …``."""
    at = stats.get("run_point_s") or {name: (low + high) / 2 for name, (low, high) in stats["run_parts_s"].items()}
    return ", ".join(f"{name} {duration(seconds / 3600)}" for name, seconds in at.items())


def summary(stats: dict) -> list[str]:
    """What a person wants first, in words: will it fit, how long a run is.

        >>> summary({"estimated_peak_gib": 14.29, "estimated_peak_parts_gib": {"weights": 6.3, "logits_and_loss": 2.8},
        ...          "gpu_mem_gib": 24, "total_iters": 960, "iters_per_epoch": 320})
        ['memory: 14.3 GiB peak estimated (2.8 GiB of it activations): fits a 24 GiB card with 9.7 GiB to spare; the smallest common card it fits is 16 GB', 'schedule: 960 iterations (320 an epoch)']
    """
    lines = []
    peak = stats.get("estimated_peak_gib")
    if isinstance(peak, int | float):
        parts = stats.get("estimated_peak_parts_gib") or {}  # the terms alive at the peak
        active = sum(v for k, v in parts.items() if k in ACTIVATION_PARTS)
        line = f"memory: {peak:.1f} GiB peak estimated" + (f" ({active:.1f} GiB of it activations)" if active else "")
        bound = stats.get("memory_bound")
        if bound:
            line += f" at {bound}"
        line += launch_words(stats.get("launch"))
        if stats.get("experts"):
            line += (f", a mixture of experts ({stats['model_params'] / 1e9:.1f}B parameters, {stats['experts']}; "
                     f"counted from {stats['model_counted']})")
        card = stats.get("gpu_mem_gib")
        if card:
            verdict, spare = fit_verdict(peak, card)
            line += {"fits": f": fits a {card:g} GiB card with {spare:.1f} GiB to spare",
                     "tight": f": tight on a {card:g} GiB card (within the estimate's {FIT_MARGIN:.0%} error)",
                     "does not fit": f": does not fit a {card:g} GiB card ({spare:.1f} GiB short)"}[verdict]
        smallest = next((size for size in CARDS_GB if fit_verdict(peak, size)[0] == "fits"), None)
        line += (f"; the smallest common card it fits is {smallest} GB" if smallest
                 else f"; more than any single card of {CARDS_GB[-1]} GB: shard it (--deepspeed) over several GPUs")
        lines.append(line)
    elif str(stats.get("memory_basis", "")).startswith("not estimated"):
        lines.append(f"memory: {stats['memory_basis']}")
    host = stats.get("host_peak_gib")
    if isinstance(host, dict) and host:
        lines.append(f"host memory: {host['train']:.1f} GiB to train, {host['pth_to_hf']:.1f} GiB for pth_to_hf, "
                     f"{host['merge']:.1f} GiB for merge ({host['merge_cpu']:.1f} GiB with --device cpu)")
    if stats.get("train_hours") is not None:
        hours = stats["train_hours"]
        span = duration(hours)
        low, high = stats.get("train_hours_range") or (hours, hours)
        scaled = f" ({scaled_words(stats)})" if stats.get("time_scaled") else ""
        where = _where(stats)
        if stats.get("run_hours") is not None:
            lines.append(whole_run_line(stats))
        lines.append(f"{'  iterations' if stats.get('run_hours') is not None else 'time'}: ~{span} of training "
                     f"iterations on {where}{scaled if stats.get('run_hours') is None else ''}, "
                     f"range {duration(low)}–{duration(high)} ({stats['total_iters']} x {stats['seconds_per_iter']} s"
                     f"{HOST_BOUND if stats.get('time_bound') == 'host' else ''})")
    elif str(stats.get("time_basis", "")).startswith("not estimated"):
        lines.append(f"time: {stats['time_basis']}")
    if stats.get("total_iters"):
        per_epoch = f" ({stats['iters_per_epoch']} an epoch)" if stats.get("iters_per_epoch") else ""
        lines.append(f"schedule: {stats['total_iters']} iterations{per_epoch}")
    return lines


def render_json(reports) -> str:
    return json.dumps([r.as_dict() for r in reports], indent=2, ensure_ascii=False) + "\n"
