"""One smoke stage in its own process: ``python -m xtuner_recipes.smoke.worker STAGE PLAN.json``.

Each stage runs xtuner's own tool (train, pth_to_hf, merge) as ``__main__``, with the
config adapted as it loads (see ``adapt``); the stage's notes go to ``STAGE.json``
beside the plan. A failing stage raises, so the process exits non-zero.
"""

import json
import os
import runpy
import sys
from pathlib import Path

from xtuner_recipes.smoke.adapt import adapt_on_load
from xtuner_recipes.smoke.runner import STAGE_NAMES


def _run_tool(module: str, argv: list[str]) -> None:
    import warnings

    sys.argv = [module, *argv]
    with warnings.catch_warnings():
        # the tool's module was imported to adapt it; runpy then warns that it runs an imported module again,
        # at the top of every stage's log, about nothing that matters here
        warnings.filterwarnings("ignore", message=".*found in sys.modules after import of package",
                                category=RuntimeWarning)
        runpy.run_module(module, run_name="__main__", alter_sys=True)


def stage_model(plan: dict, notes: list[str]) -> None:
    from xtuner_recipes.smoke.tiny import build_tiny

    changes = build_tiny(Path(plan["model_source"]), Path(plan["model"]))
    notes.append("shrunk: " + ("; ".join(changes) if changes else "already tiny"))


def train_argv(plan: dict, environ: dict) -> list[str]:
    """xtuner train's arguments for the plan. With ``deepspeed``: ``--deepspeed PRESET``, and in ``environ``
    the rendezvous of a one-process group (DeepSpeed's init reads it; ``xtuner train`` without a
    launcher sets none), on a free local port unless one is set."""
    argv = [plan["config"], "--work-dir", plan["work_dir"]]
    if not plan.get("deepspeed"):
        return argv
    if "MASTER_PORT" not in environ:
        from xtuner_recipes.smoke.nodes import free_port

        environ["MASTER_PORT"] = str(free_port())
    for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
        environ.setdefault(name, value)
    return [*argv, "--deepspeed", plan["deepspeed"]]


def stage_train(plan: dict, notes: list[str]) -> None:
    adapt_on_load(plan, notes)
    _run_tool("xtuner.tools.train", train_argv(plan, os.environ))


def stage_pth_to_hf(plan: dict, notes: list[str]) -> None:
    adapt_on_load(plan, notes)
    _run_tool("xtuner.tools.model_converters.pth_to_hf", [plan["config"], plan["checkpoint"], plan["adapter"]])


def stage_merge(plan: dict, notes: list[str]) -> None:
    _run_tool("xtuner.tools.model_converters.merge",
              [plan["model"], plan["adapter"], plan["merged"], "--device", plan["device"]])


def stage_chat(plan: dict, notes: list[str]) -> None:
    from xtuner_recipes.smoke.chat import chat_turn

    question, reply = chat_turn(plan["config"], plan["merged"], device=plan["device"])
    notes.append(json.dumps({"question": question, "reply": reply}, ensure_ascii=False))


STAGES = dict(zip(STAGE_NAMES, (stage_model, stage_train, stage_pth_to_hf, stage_merge, stage_chat), strict=True))


def main(argv: list[str]) -> int:
    stage, plan_path = argv
    plan = json.loads(Path(plan_path).read_text(encoding="utf-8"))
    from xtuner_recipes.smoke.adapt import patch_runtime

    notes = patch_runtime(plan["device"]) if stage != "model" else []
    out = Path(plan_path).with_name(f"{stage}.json")
    try:
        STAGES[stage](plan, notes)
    finally:
        out.write_text(json.dumps(notes, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
