"""Render reports: text for people (grouped by config, colour on a terminal), JSON for machines.

The JSON keys are public API, documented in ``schemas/report.schema.json``.
"""

import json
import os

from xtuner_recipes.validate.findings import DATA_ROW_CODES, SEVERITIES

_COLOURS = {"error": "31", "warning": "33", "info": "36", "ok": "32"}


def _paint(text: str, what: str, colour: bool) -> str:
    return f"\033[{_COLOURS[what]}m{text}\033[0m" if colour else text


def use_colour(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def render_text(reports, *, colour: bool = False) -> str:
    lines = []
    for report in reports:
        lines.append(f"{report.config}: " + (_paint("ok", "ok", colour) if report.ok else _paint("FAILED", "error", colour)))
        for f in report.findings:
            # A data row's line belongs to the data file, which its message names.
            where = f"{report.config}:{f.line}" if f.line and f.code not in DATA_ROW_CODES else report.config
            key = f" [{f.key}]" if f.key else ""
            lines.append(f"  {where}: {_paint(f.severity, f.severity, colour)} {f.code}{key} {f.message}")
            if f.hint:
                lines.append(f"      hint: {f.hint}")
        if report.stats:
            shown = {k: v for k, v in report.stats.items() if k != "data_files"}
            lines.append("  stats: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    counts = {s: sum(f.severity == s for r in reports for f in r.findings) for s in SEVERITIES}
    failed = sum(not r.ok for r in reports)
    lines.append(f"{len(reports)} config(s), {failed} failed: {counts['error']} error(s), "
                 f"{counts['warning']} warning(s), {counts['info']} note(s)")
    return "\n".join(lines) + "\n"


def render_json(reports) -> str:
    return json.dumps([r.as_dict() for r in reports], indent=2, ensure_ascii=False) + "\n"
