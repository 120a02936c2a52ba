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
MEASURES = ("about a minute: two transformer layers of the config's shape trained with its quantization and LoRA at "
            "two sizes, a decode step, the card's memory bandwidth and the disk's write speed")


def cache_path() -> Path:
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


def calibrated_model(base: dict, entry: dict, quantization: str) -> dict | None:
    """The time model with this card's measured throughput and call cost for ``quantization`` (None when that
    quantization was not calibrated): the rest (routed experts' calls, DeepSpeed's costs, the residual range)
    stays the fit's."""
    measured = (entry.get("quantization") or {}).get(quantization)
    if not isinstance(measured, dict):
        return None
    model = dict(base, card=entry["card"]["name"], card_spec=dict(entry["card"]))
    model["flops_per_s"] = dict(base["flops_per_s"], **{quantization: measured["flops_per_s"]})
    model["seconds_per_call"] = dict(base["seconds_per_call"], **{quantization: measured["seconds_per_call"]})
    if measured.get("seconds_per_decode_call") is not None:
        model["seconds_per_decode_call"] = {quantization: measured["seconds_per_decode_call"]}
    if entry.get("write_gbs"):
        model["write_gbs"] = entry["write_gbs"]
    model["calibrated"] = {"date": entry.get("date"), "config": measured.get("config"), "quantization": quantization}
    return model


def solve(rows: list[dict], *, dequantize_s: float, expert_s: float) -> tuple[float, float]:
    """(FLOPs a second, seconds a call) from two timed sizes: ``seconds = flops/F + calls*c + dequantize_s +
    expert_calls*expert_s``. A call cost that comes out below zero (the short step too noisy) is 0, and the
    throughput is then the long step's alone."""
    (long, short) = sorted(rows, key=lambda row: -row["flops"])
    rest = [row["seconds"] - dequantize_s - row["expert_calls"] * expert_s for row in (long, short)]
    det = long["flops"] * short["calls"] - short["flops"] * long["calls"]
    if det > 0:
        inverse = (rest[0] * short["calls"] - rest[1] * long["calls"]) / det
        per_call = (long["flops"] * rest[1] - short["flops"] * rest[0]) / det
        if inverse > 0 and per_call >= 0:
            return 1 / inverse, per_call
    return long["flops"] / max(rest[0], 1e-9), 0.0


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
