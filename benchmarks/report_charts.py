"""Time the HTML report's charts (the most of `validate --report`'s own time, and of the shipped-config sweep's):
each chart drawn on fixed inputs, with the fixed margins the report uses and with matplotlib's constrained layout
(how they were drawn before 2026-12-07), the median of ``--repeat`` runs each.

    python -m benchmarks.report_charts [--repeat 20]     # prints, and writes benchmarks/results/report-charts.json
"""

import argparse
import datetime
import json
import statistics
import time
from pathlib import Path

import numpy as np

from xtuner_recipes.report import charts

RESULTS = Path(__file__).resolve().parent / "results" / "report-charts.json"


def inputs() -> dict:
    rng = np.random.default_rng(0)
    full = rng.integers(10, 3000, size=2000)
    kept = np.minimum(full, 2048)
    return {
        "memory": lambda: charts.memory_svg({"weights": 3.6, "lora_params": 0.6, "optimizer_states": 2.4,
                                             "activation_checkpoints": 1.0, "logits_and_loss": 1.9}, 10.3,
                                            cards=(8, 12, 16, 24, 40, 80)),
        "lengths": lambda: charts.lengths_svg(full, kept, kept // 2, max_length=2048),
        "schedule": lambda: charts.schedule_svg(list(np.linspace(0, 2e-4, 5000)), warmup=150,
                                                checkpoints=[500, 1000], evaluations=[0, 500, 1000]),
        "run": lambda: charts.run_svg({"load": (28.5, 50.5), "data": (5.0, 5.0), "iterations": (156.0, 208.9),
                                       "evaluation": (43.4, 43.4), "checkpoints": (2.6, 7.7),
                                       "pth_to_hf": (28.5, 50.5), "merge": (37.1, 78.6)}),
    }


def timed(draw, repeat: int) -> float:
    draw()  # fonts and caches warm
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        draw()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    fixed = {name: timed(draw, args.repeat) for name, draw in inputs().items()}
    plain = charts._figure

    def constrained(*args, **kwargs):
        figure = plain(*args, **kwargs)
        figure.set_layout_engine("constrained")
        return figure

    charts._figure = constrained
    try:
        before = {name: timed(draw, args.repeat) for name, draw in inputs().items()}
    finally:
        charts._figure = plain
    row = {"date": datetime.date.today().isoformat(), "repeat": args.repeat,
           "fixed_margins_s": {k: round(v, 4) for k, v in fixed.items()},
           "constrained_layout_s": {k: round(v, 4) for k, v in before.items()}}
    RESULTS.write_text(json.dumps(row, indent=1) + "\n")
    for name in fixed:
        print(f"{name:<9} fixed margins {fixed[name]:.3f} s   constrained layout {before[name]:.3f} s")


if __name__ == "__main__":
    main()
