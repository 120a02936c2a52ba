"""``validate CONFIG --report report.html``: one self-contained HTML page — the verdict, memory, time,
data, schedule and the commands — with its charts inline as SVG (no network, no script).

Called by ``validate --report``: ``render(report, facts, plan)`` with the ``ConfigReport``, the
``Facts`` that ``validate_config(..., keep=kept)`` left in ``kept["context"]``, and ``make_plan``'s plan.
"""

import datetime
from pathlib import Path

from xtuner_recipes.report import charts, sections
from xtuner_recipes.findings import DATA_ROW_CODES
from xtuner_recipes.validate.estimate.gpu import FIT_MARGIN, fit_verdict
from xtuner_recipes.validate.reporters import ACTIVATION_PARTS, CARDS_GB, summary

TEMPLATE = Path(__file__).with_name("report.html.j2")


def render(report, facts=None, plan=None) -> str:
    """The page for one ``ConfigReport``; ``facts``: what its run's checks found (data, schedule), ``plan``: its
    commands."""
    import jinja2

    from xtuner_recipes import __version__

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                     lstrip_blocks=True)
    template = environment.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        config=report.config, ok=report.ok, internal_error=report.internal_error, machine=report.machine,
        summary=summary(report.stats),
        findings=_findings(report), memory=_memory(report.stats), memory_basis=report.stats.get("memory_basis"),
        time=_time(report.stats),
        data=_data(report.stats, facts), schedule=_schedule(report.stats, facts), plan=plan,
        version=__version__, generated=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))


def _findings(report) -> list[dict]:
    try:
        source = Path(report.config).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        source = ""
    return [{"finding": f, "lines": [] if f.code in DATA_ROW_CODES else sections.source_lines(source, f.line)}
            for f in report.findings]


def _memory(stats: dict) -> dict | None:
    peak, parts = stats.get("estimated_peak_gib"), stats.get("estimated_peak_parts_gib")
    if not isinstance(peak, int | float) or not parts:
        return None
    return {"peak": peak, "bound": stats.get("memory_bound"), "svg": charts.memory_svg(parts, peak, cards=CARDS_GB),
            "activations": sum(v for k, v in parts.items() if k in ACTIVATION_PARTS),
            "cards": [(card, fit_verdict(peak, card)[0]) for card in CARDS_GB],
            "at_max_length": stats.get("estimated_peak_gib_at_max_length"), "margin": FIT_MARGIN}


def _time(stats: dict) -> dict:
    from xtuner_recipes.validate.reporters import duration

    found = {key: stats.get(key) for key in ("seconds_per_iter", "train_hours", "time_card", "time_basis", "total_iters",
                                              "train_hours_range", "time_scaled", "run_hours", "run_basis")}
    if found["train_hours_range"]:
        found["range_words"] = "–".join(map(duration, found["train_hours_range"]))
    if stats.get("run_parts_s"):
        from xtuner_recipes.report.charts import run_svg
        from xtuner_recipes.validate.reporters import run_parts

        found["run_words"] = duration(stats["run_hours"])
        found["run_range_words"] = "–".join(map(duration, stats["run_hours_range"]))
        found["run_parts_words"] = run_parts(stats)
        found["run_svg"] = run_svg(stats["run_parts_s"], stats.get("run_point_s"))
    if stats.get("time_scaled"):
        from xtuner_recipes.validate.reporters import scaled_words

        found["scaled_words"] = scaled_words(stats)
    return found


def _data(stats: dict, facts) -> dict:
    out = {"rows": stats.get("rows"), "usable": stats.get("usable_rows"), "samples": stats.get("samples"),
           "packed": stats.get("samples_after_packing"), "packed_range": stats.get("samples_after_packing_range"),
           "charts": [], "examples": []}
    samples = facts.values.get("samples") if facts is not None else None
    for key, tally in (samples.tallies if samples is not None else ()):
        if not len(tally.full):
            continue
        out["charts"].append({"key": key, "svg": charts.lengths_svg(tally.full, tally.kept, tally.labelled,
                                                                  max_length=tally.max_length)})
        special = tally.counting.special
        for turns, shaped in tally.examples:
            segments = sections.example_segments(turns, shaped, bos=special.bos or 0, eos=special.eos)
            out["examples"].append({"key": key, "max_length": tally.max_length,
                                    "segments": [(s, s.cut(tally.max_length)) for s in segments]})
    return out


def _schedule(stats: dict, facts) -> dict:
    if facts is None or facts.values.get("settings") is None:
        return {"svg": None, "why": "the config did not load"}
    schedule = facts.values.get("schedule")
    rates, why = sections.learning_rates(facts.config, facts.settings, schedule)
    if not rates:
        return {"svg": None, "why": why}
    saves, evaluations = sections.marks(facts.config, facts.settings, schedule)
    return {"svg": charts.schedule_svg(rates, warmup=stats.get("warmup_iters"), checkpoints=saves,
                                       evaluations=evaluations), "why": None, "peak_lr": max(rates),
            "final_lr": rates[-1], "iterations": len(rates)}
