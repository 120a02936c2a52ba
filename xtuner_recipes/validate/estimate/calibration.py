"""What ``xtuner-recipes calibrate`` measured on a machine's card, kept in the user's cache and read by the time
estimate from then on (``validate``, ``plan``, ``train`` and the report all go through it).

The cache file (``$XDG_CACHE_HOME/xtuner-recipes/calibration.json``, else ``~/.cache/…``) maps a card's name, as
torch names it, to what was measured there::

    {"NVIDIA H200": {"card": {"name": …, "tflops": …, "bandwidth_gbs": …, "memory_gb": …, "bf16": …},
                     "write_gbs": 1.7, "date": "2026-12-07",
                     "quantization": {"nf4": {"flops_per_s": …, "seconds_per_call": …,
                                              "seconds_per_decode_call": …, "rows": […], "config": …}}}}

A card outside ``cards.CARDS`` that was calibrated becomes a card the estimate can name (``--gpu`` takes it too).

    >>> base = {"card": "NVIDIA H200", "flops_per_s": {"nf4": 2e14}, "seconds_per_call": {"nf4": 1e-4},
    ...         "seconds_per_expert_call": 0.0, "stage": {"0": 0.0}}
    >>> entry = {"card": {"name": "NVIDIA A10", "tflops": 125, "bandwidth_gbs": 550, "memory_gb": 24},
    ...          "quantization": {"nf4": {"flops_per_s": 5e13, "seconds_per_call": 2e-4}}}
    >>> model = calibrated_model(base, entry, "nf4")
    >>> model["card"], model["flops_per_s"]["nf4"], model["card_spec"]["bandwidth_gbs"]
    ('NVIDIA A10', 50000000000000.0, 550)
"""

import json
import os
from pathlib import Path

from xtuner_recipes.validate.estimate import cards

CPU_CARD = "cpu"  # the "card" calibrate names on a machine without a GPU (a 16-bit config only)
MEASURES = ("about a minute: one and two transformer layers of the config's shape trained with its quantization and "
            "LoRA at two sizes, a decode step, the card's memory bandwidth and the disk's write speed")


def cache_path() -> Path:
    """``$XTUNER_RECIPES_CALIBRATION`` when set (the tests', a shared cluster's file), else the user's cache."""
    if os.environ.get("XTUNER_RECIPES_CALIBRATION"):
        return Path(os.environ["XTUNER_RECIPES_CALIBRATION"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xtuner-recipes" / "calibration.json"


def load_all(path: Path | None = None) -> dict:
    """Every card's calibration; {} when none was made (or the file is unreadable: a cache, not a setting)."""
    try:
        found = json.loads((path or cache_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def entry_for(name: str | None, path: Path | None = None) -> dict | None:
    """The calibration of the card ``name`` names (torch's name, the table's name or its short alias)."""
    if not name:
        return None
    table = cards.find(name)
    wanted = {cards.key(name), *((cards.key(table.name),) if table else ())}
    for card_name, entry in load_all(path).items():
        if isinstance(entry, dict) and cards.key(card_name) in wanted:
            return entry
    return None


def card(entry: dict) -> cards.Card:
    """The calibrated card: its table row where it has one, with the bandwidth as measured."""
    spec = entry["card"]
    table = cards.find(spec["name"])
    return cards.Card(name=spec["name"], tflops=table.tflops if table else spec["tflops"],
                      bandwidth_gbs=spec["bandwidth_gbs"], memory_gb=spec["memory_gb"],
                      bf16=spec.get("bf16", True), link_gbs=table.link_gbs if table else 32.0)


def find_card(name: str | None, path: Path | None = None) -> cards.Card | None:
    """A card by name from the table, else from the calibrations on this machine."""
    found = cards.find(name)
    entry = None if found else entry_for(name, path)
    return card(entry) if entry else found


def time_source(name: str | None, path: Path | None = None) -> tuple[cards.Card | None, dict | None, bool]:
    """``(card, calibration, calibrated_is_the_verdict)`` for the card ``name`` names. A card of the table keeps the
    table's time (calibrate has not yet beaten it on a GPU: BENCHMARKS.md, 2026-12-07), with a calibration shown
    beside it; a card outside the table has calibrate's time or none. ``validate`` and ``doctor`` both ask here."""
    table = cards.find(name)
    entry = entry_for(name, path)
    return table or (card(entry) if entry else None), entry, table is None and entry is not None


def host_pace(entry: dict | None) -> float | None:
    """The host's pace calibrate measured on this machine (µs to issue one small op), or None."""
    machine = (entry or {}).get("machine")
    pace = machine.get("host_op_us") if isinstance(machine, dict) else None
    return float(pace) if isinstance(pace, (int, float)) and pace > 0 else None


def paced_model(base: dict, entry: dict | None) -> dict:
    """The table's model with its host's part at the pace calibrate measured on this machine (``timing.host_pace``),
    or ``base`` itself where no pace was measured or the model has no reference pace. ``validate``, ``doctor`` and
    ``calibrate``'s comparison all take the table's time through here."""
    pace = host_pace(entry)
    return dict(base, host_op_us=pace) if pace and base.get("host_pace_us") else base


def calibrated_model(base: dict, entry: dict, quantization: str) -> dict | None:
    """The time model with this card's measured throughput and call cost for ``quantization`` (None when that
    quantization was not calibrated): the rest (routed experts' calls, DeepSpeed's costs, the residual range)
    stays the fit's."""
    measured = (entry.get("quantization") or {}).get(quantization)
    if not isinstance(measured, dict):
        return None
    # calibrate solves its steps as a sum of parts (calibration.solve): its model adds them, not overlaps them
    model = dict(base, card=entry["card"]["name"], card_spec=dict(entry["card"]), overlap=False)
    model["flops_per_s"] = dict(base["flops_per_s"], **{quantization: measured["flops_per_s"]})
    model["seconds_per_call"] = dict(base["seconds_per_call"], **{quantization: measured["seconds_per_call"]})
    for key in ("seconds_per_iteration", "seconds_per_decode_call", "seconds_per_decode_token"):
        if measured.get(key) is not None:
            model[key] = {quantization: measured[key]}
    if entry.get("write_gbs"):
        model["write_gbs"] = entry["write_gbs"]
    model["calibrated"] = {"date": entry.get("date"), "config": measured.get("config"), "quantization": quantization}
    return model


def solve(rows: list[dict], columns: tuple[str, ...]) -> dict[str, float]:
    """Least squares (relative error) of ``seconds - known_s`` over the rows' ``columns`` (``flops``, ``calls``,
    ``one``), each coefficient at least 0: a coefficient the fit puts below zero (noise in a short step) is
    dropped, as 0, and the rest refitted. ``flops``' coefficient is seconds a FLOP (the throughput's inverse)."""
    import numpy as np

    target = np.array([row["seconds"] - row.get("known_s", 0.0) for row in rows])
    weights = 1 / np.array([row["seconds"] for row in rows])
    chosen = list(columns)
    while chosen:
        matrix = np.array([[1.0 if name == "one" else row[name] for name in chosen] for row in rows])
        scale = np.abs(matrix).max(axis=0)  # columns of 1e12 FLOPs and of 1e2 calls: solved at one scale
        scale[scale == 0] = 1.0
        solution, *_ = np.linalg.lstsq(matrix / scale * weights[:, None], target * weights, rcond=None)
        found = dict(zip(chosen, (solution / scale).tolist()))
        negative = [name for name in chosen if found[name] < 0 and name != "flops"]
        if not negative:
            if found.get("flops", 1.0) > 0:
                return {name: max(0.0, found.get(name, 0.0)) for name in columns}
            negative = [chosen[-1]]
        chosen.remove(min(negative, key=lambda name: found[name]))
    return dict.fromkeys(columns, 0.0)


def save(entry: dict, path: Path | None = None) -> Path:
    """Add or replace this card's calibration for the quantizations in ``entry`` (others kept), atomically."""
    path = path or cache_path()
    everything = load_all(path)
    name = entry["card"]["name"]
    old = everything.get(name) if isinstance(everything.get(name), dict) else {}
    merged = dict(old, **{k: v for k, v in entry.items() if k != "quantization"})
    merged["quantization"] = dict(old.get("quantization") or {}, **entry.get("quantization", {}))
    everything[name] = merged
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(everything, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
