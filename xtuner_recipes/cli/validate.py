"""``xtuner-recipes validate CONFIG...``: find a config's mistakes before any model loads."""

import sys

from xtuner_recipes.cli.common import (EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, add_command, gpu_card, positive_int,
                                       positive_number, preset)
from xtuner_recipes.validate.runner import LEVELS

EXAMPLES = """  xtuner-recipes validate internlm_chat_7b_qlora_medqa_e3.py
  xtuner-recipes validate configs/*.py --level static --format json
  xtuner-recipes validate my.py --sample 1000 --gpus 8 --strict-env
  xtuner-recipes validate my.py --gpu-mem 24   # will it fit on a 24 GiB card?
  xtuner-recipes validate my.py --gpu a100   # how long on one A100 (scaled from the cards measured)?
  xtuner-recipes validate my.py --deepspeed none   # launched without DeepSpeed
  xtuner-recipes validate my.py --report report.html   # memory, time, data and schedule, to open in a browser"""


def add_parser(commands) -> None:
    parser = add_command(commands, "validate", "Check configs: source, imports, model, data, schedule, machine.",
                         EXAMPLES, run)
    parser.add_argument("configs", nargs="+", metavar="CONFIG")
    parser.add_argument("--level", choices=LEVELS, default="full",
                        help="static: source only; load: + mmengine and imports; full (default): + model, data, schedule")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--sample", type=positive_int, metavar="N", help="check only the first N data rows")
    parser.add_argument("--gpus", type=positive_int, metavar="N",
                        help="GPUs for the schedule (default: NPROC_PER_NODE x NNODES)")
    parser.add_argument("--gpu-mem", type=positive_number, metavar="GIB",
                        help="check the memory estimate against a card of GIB GiB (default: this machine's GPU)")
    parser.add_argument("--gpu", type=gpu_card, metavar="NAME",
                        help="give the time on this card (h200, h100, a100, l40s, a10, l4, rtx4090, rtx3090, v100, ...; "
                             "default: this machine's GPU, else the H200 where it was measured)")
    parser.add_argument("--host-mem", type=positive_number, metavar="GIB",
                        help="check training's host-memory estimate against GIB (default: this machine's, if it has a GPU)")
    stage = parser.add_mutually_exclusive_group()
    stage.add_argument("--zero-stage", type=int, choices=(0, 1, 2, 3),
                       help="DeepSpeed ZeRO stage for the memory estimate (default: the --deepspeed preset's, 2 for "
                            "deepspeed_zero2, the launch gen and plan print)")
    stage.add_argument("--deepspeed", metavar="PRESET", type=preset,
                       help="the launch's --deepspeed (deepspeed_zero3, or a JSON file; none: without DeepSpeed): its "
                            "ZeRO stage, as xtuner reads it, and xtuner's own launch checks")
    parser.add_argument("--strict-env", action="store_true", help="machine findings (no GPU, ...) are errors")
    parser.add_argument("--report", metavar="FILE", help="also write a one-file HTML report (one CONFIG only)")
    parser.add_argument("--force", action="store_true", help="overwrite the --report FILE if it exists")


def _progress(config: str):
    if not sys.stderr.isatty():
        return None

    def show(what: str, done: int, total: int | None) -> None:
        end = "\n" if total is not None and done >= total else ""
        of = f"/{total}" if total else ""
        sys.stderr.write(f"\r  {config}: {done}{of} {what}{end}")
        sys.stderr.flush()

    return show


def run(args) -> int:
    from xtuner_recipes.validate import validate_config
    from xtuner_recipes.validate.inputs import Launch, Options
    from xtuner_recipes.validate.reporters import render_json, render_text, use_colour

    if args.deepspeed is not None:  # an unknown preset: a usage error, said by main
        launch = Launch.from_preset(args.deepspeed, gpus=args.gpus)
    else:
        launch = Launch(gpus=args.gpus) if args.zero_stage is None else Launch(stage=args.zero_stage, gpus=args.gpus)
    if args.report:
        _refuse_report(args)
    keep: dict = {}
    reports = [
        validate_config(path, level=args.level, launch=launch, keep=keep if args.report else None,
                        options=Options(sample=args.sample, strict_env=args.strict_env, gpu_mem=args.gpu_mem, gpu=args.gpu,
                                        host_mem=args.host_mem, progress=_progress(path)))
        for path in args.configs
    ]
    if args.report:
        _write_report(args, reports[0], keep.get("context"), launch)
    if args.format == "json":
        sys.stdout.write(render_json(reports))
    else:
        sys.stdout.write(render_text(reports, colour=use_colour(sys.stdout)))
    for report in reports:
        if report.internal_error:
            print(f"xtuner-recipes: {report.config}: {report.internal_error} (a bug: please report it)", file=sys.stderr)
    if any(r.internal_error for r in reports):
        return EXIT_USAGE
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FINDINGS


def _refuse_report(args) -> None:
    """Before any work: one config, and no report file overwritten without --force."""
    from pathlib import Path

    from xtuner_recipes.errors import RecipeError
    from xtuner_recipes.fileio import refuse_existing

    if len(args.configs) != 1:
        raise RecipeError(f"--report takes one CONFIG, got {len(args.configs)}",
                          hint="run validate once per config, each with its own --report FILE")
    _refuse_an_input(Path(args.report), args.configs)
    refuse_existing(Path(args.report), force=args.force)


def _refuse_an_input(page, inputs) -> None:
    """The report never takes the place of what it reports on (the config, its data), --force or not."""
    from pathlib import Path

    from xtuner_recipes.errors import RecipeError

    target = page.expanduser().resolve()
    for path in inputs:
        if Path(path).expanduser().resolve() == target:
            raise RecipeError(f"--report {page} is {path}, which validate reads: the report would replace it",
                              hint="name another file for the report, e.g. report.html")


def _write_report(args, report, facts, launch) -> None:
    from pathlib import Path

    from xtuner_recipes.errors import RecipeError
    from xtuner_recipes.fileio import write_atomic
    from xtuner_recipes.report import render

    _refuse_an_input(Path(args.report), report.stats.get("data_files", []))
    plan = None
    if facts is not None and facts.values.get("settings") is not None:
        from xtuner_recipes.plan import make_plan

        try:
            plan = make_plan(report.config, gpus=args.gpus or 1, deepspeed=launch.preset, report=report)
        except RecipeError:
            plan = None  # the page says there is no plan; validate's findings say why
    write_atomic(Path(args.report), render(report, facts, plan), force=args.force)
    print(f"report: {args.report}", file=sys.stderr)
