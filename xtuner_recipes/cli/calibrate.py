"""``xtuner-recipes calibrate [CONFIG]``: measure this machine's card for the time estimate (about a minute)."""

import contextlib
import json
import sys
import tempfile
from pathlib import Path

from xtuner_recipes.cli.common import EXIT_OK, add_command, print_json

EXAMPLES = """  xtuner-recipes calibrate internlm_chat_7b_qlora_medqa_e3.py
  xtuner-recipes calibrate            # the tutorial's QLoRA launch on a Llama-2-7B shape
  xtuner-recipes calibrate my_config.py --scratch /data/work_dirs --json
  xtuner-recipes calibrate my_config.py --layers 4 8   # deeper copies: a fast card's work outlasts the launches
  xtuner-recipes validate my_config.py   # then: calibrate's time (beside the table's, for a card of the table)"""

DEFAULT_SHAPE = "meta-llama/Llama-2-7b-hf"  # internlm-chat-7b's layers (its own code is not shipped here)


def add_parser(commands) -> None:
    parser = add_command(
        commands, "calibrate",
        "Measure this machine's GPU for the time estimate: one and two layers of the config's model trained with its "
        "quantization and LoRA, a decode step, memory bandwidth, disk write speed. Kept in the user's cache; "
        "validate, plan, train and the report use it from then on.", EXAMPLES, run)
    parser.add_argument("config", metavar="CONFIG", type=Path, nargs="?",
                        help="the config whose model shape, quantization and LoRA are measured (default: the "
                             "tutorial's oasst1 QLoRA config on a Llama-2-7B shape)")
    parser.add_argument("--scratch", type=Path, default=Path.cwd(), metavar="DIR",
                        help="where the two-layer copy is written and the write speed measured: the disk your "
                             "checkpoints go to (default: the current directory)")
    parser.add_argument("--layers", type=int, nargs=2, default=(1, 2), metavar=("A", "B"),
                        help="the two copies' layers, A < B (default: 1 2; deeper copies keep a fast card busy "
                             "longer than the host's launches)")
    parser.add_argument("--json", action="store_true", help="print the measurement as JSON")


def _progress(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def _default_config(folder: Path) -> Path:
    """The tutorial's oasst1 QLoRA config for a model folder holding only the default shape's config.json."""
    from xtuner_recipes.generate import generate
    from xtuner_recipes.model_info import hub_config

    fields, _ = hub_config(DEFAULT_SHAPE)
    model = folder / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(fields), encoding="utf-8")
    out = folder / "calibrate_oasst1.py"
    out.write_text(generate("oasst1", str(model), output=out).code, encoding="utf-8")
    return out


def compare(entry: dict, model_config: dict, run, packed: bool) -> dict | None:
    """Seconds an iteration of the config's shape (``run``) on the whole model: calibrated against the table's."""
    from xtuner_recipes.validate.estimate import calibration, cards, count, timing

    base = timing.load_model()
    arch, _ = count.arch_of(model_config)
    quantization = next(iter(entry["quantization"]))
    model = calibration.calibrated_model(base, entry, quantization) if base else None
    if arch is None or model is None or timing.outside(base, run):
        return None
    shape = {"sequences": run.batch_size, "length": run.max_length, "causal": packed or run.batch_size == 1}
    table_card = cards.find(entry["card"]["name"])
    return {"sequences": run.batch_size, "length": run.max_length, "packed": packed,
            "calibrated_s": round(timing.per_iteration(model, arch, run, **shape), 4),
            "table_s": round(timing.per_iteration(calibration.paced_model(base, entry), arch, run, **shape,
                                                  card=table_card), 4) if table_card else None}


def render_text(entry: dict, saved: Path, compared: dict | None) -> str:
    card = entry["card"]
    (quantization, got), = entry["quantization"].items()
    lines = [f"card: {card['name']}, memory bandwidth {card['bandwidth_gbs']} GB/s, disk write "
             f"{entry['write_gbs']} GB/s (measured)",
             f"{quantization} LoRA training: {got['flops_per_s'] / 1e12:.3g} TFLOPS achieved, "
             f"{got['seconds_per_call'] * 1e6:.0f} µs a linear layer's call, {got['seconds_per_iteration'] * 1e3:.1f} ms "
             f"an iteration besides; decoding {got['seconds_per_decode_call'] * 1e6:.0f} µs a call, "
             f"{got['seconds_per_decode_token'] * 1e3:.1f} ms a token besides"]
    pace = entry.get("machine", {}).get("host_op_us")
    if pace is not None:
        lines.append(f"host: {pace} µs to issue one small op{_held_out_paces()}")
    if compared:
        table = f", the table's {compared['table_s']} s" if compared["table_s"] is not None else ""
        lines.append(f"this config ({compared['sequences']} x {compared['length']} tokens): {compared['calibrated_s']} s "
                     f"an iteration calibrated{table}")
    lines += [f"adapted: {note}" for note in entry.get("adaptations", [])]
    where = ("the card is in the table: validate's time is the table's, its host's part at this host's pace, with "
             "calibrate's own beside it" if compared and compared["table_s"] is not None
             else "validate, plan, train and the report use it for this card")
    lines.append(f"saved to {saved}: {where}")
    return "\n".join(lines)


def _held_out_paces() -> str:
    """The host probe's range over the time model's held-out runs, for comparing this host with theirs."""
    from xtuner_recipes.validate.estimate import timing

    model = timing.load_model() or {}
    paces = timing.pace_range(model)
    if not paces:
        return ""
    return (f" (the time model's constants hold at {model['host_pace_us']:.2f} µs, its runs' hosts took "
            f"{paces[0]:.1f}–{paces[1]:.1f} µs; an iteration the host paces takes about as much longer as this number "
            "is larger)")


def run(args) -> int:
    from xtuner_recipes.calibrate import measure
    from xtuner_recipes.errors import RecipeError
    from xtuner_recipes.validate.estimate import calibration

    if not args.scratch.is_dir():
        raise RecipeError(f"--scratch {args.scratch}: not a folder")
    if not 0 < args.layers[0] < args.layers[1]:
        raise RecipeError(f"--layers {args.layers[0]} {args.layers[1]}: two depths, the first at least 1 and below "
                          "the second", hint="--layers 1 2 (the default), or deeper: --layers 4 8")
    with tempfile.TemporaryDirectory(prefix="xtuner-recipes-calibrate-config-") as folder:
        config = args.config or _default_config(Path(folder))
        if not config.is_file():
            raise RecipeError(f"{config}: no such config file")
        with contextlib.redirect_stdout(sys.stderr):  # what the libraries print as they import (DeepSpeed's INFO)
            from mmengine.config import Config

            from xtuner_recipes.validate.estimate.gpu import Run
            from xtuner_recipes.validate.inputs import Launch, Settings, setting

            loaded = Config.fromfile(str(config))  # once: the shape compared below, and the one measured
            shape = Run.of(Settings.parse(loaded, None), Launch())
            packed = setting(loaded, "train_dataloader.dataset.pack_to_max_length") is True
            entry = measure(config, scratch=args.scratch, progress=_progress, loaded=loaded, layers=tuple(args.layers))
        model_dir = Path(next(iter(entry["quantization"].values()))["model"])
        compared = compare(entry, json.loads((model_dir / "config.json").read_text(encoding="utf-8")), shape, packed)
    saved = calibration.save(entry)
    if args.json:
        print_json({"calibration": entry, "saved": str(saved), "this_config": compared})
    else:
        print(render_text(entry, saved, compared))
    return EXIT_OK
