"""``xtuner-recipes gen TASK --model PATH``: write a ready-to-train xtuner config for a recipe."""

import shlex
import sys
from pathlib import Path

from xtuner_recipes.cli.common import EXIT_OK, add_command, print_json, warn
from xtuner_recipes.fileio import write_atomic
from xtuner_recipes.recipes import RECIPES

EXAMPLES = """  xtuner-recipes gen medqa --model ./internlm-chat-7b --data ./medqa/train.jsonl
  xtuner-recipes gen oasst1 --model ./internlm-chat-7b --set max_length=1024 --set lr=1e-4
  xtuner-recipes gen msagent --model ./internlm2-chat-7b -o agent.py --force
  xtuner-recipes gen medqa --model ./internlm-chat-7b --gpus 8"""


def add_parser(commands) -> None:
    parser = add_command(commands, "gen", "Generate an xtuner config for a recipe.", EXAMPLES, run)
    parser.add_argument("task", metavar="TASK", choices=[r.name for r in RECIPES], help="recipe: %(choices)s")
    parser.add_argument("--model", required=True, metavar="PATH", help="model directory or hub id")
    parser.add_argument("--data", metavar="PATH", help="data file (.json/.jsonl) or folder; default: the recipe's")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
        help="override a setting (Python literal), e.g. --set lr=1e-4; repeatable",
    )
    parser.add_argument("--gpus", type=int, default=1, metavar="N",
                        help="GPUs per run: accumulative_counts is divided to keep the global batch (default: 1)")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="output file (default: xtuner's naming)")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of text")


def _dropped_samples(result) -> list[str]:
    """When ``max_length`` was lowered to the model's positions, what that does to the data, counted now (the first
    200 rows, through the model's tokenizer, as ``validate --sample 200``): samples xtuner drops (T003) or cuts
    (T001) are said at generation time, not found later."""
    if not result.max_length_capped:
        return []
    from xtuner_recipes.validate.inputs import Options
    from xtuner_recipes.validate.runner import validate_config

    report = validate_config(str(result.output), level="full", options=Options(sample=200), tokenizer_process=False)
    return [f"{f.code}: {f.message}" for f in report.findings if f.code in ("T001", "T003")]


def run(args) -> int:
    from xtuner_recipes.generate import generate  # libcst: imported by the commands that rewrite
    from xtuner_recipes.rewrite import parse_override

    overrides = [parse_override(text) for text in args.sets]
    result = generate(args.task, args.model, data=args.data, overrides=overrides, output=args.output,
                      gpus=args.gpus)
    write_atomic(result.output, result.code, force=args.force)
    warnings = list(result.warnings) + _dropped_samples(result)
    from xtuner_recipes.config_source import literals, parse
    from xtuner_recipes.plan import launch_command

    from xtuner_recipes.model_info import hub_config, read_config, routes_to_experts

    # as `plan` says for the same file: unpacked batches, or a mixture of experts, fragment the default allocator
    unpacked = (literals(parse(result.code)).get("pack_to_max_length") is False
                or routes_to_experts(read_config(args.model) or hub_config(args.model)[0]))
    # `xtuner-recipes train` validates first and returns training's real status; `xtuner train` does neither
    next_command = launch_command(result.output, gpus=args.gpus, unpacked=unpacked)[0].replace(
        "xtuner train ", "xtuner-recipes train ", 1)
    if args.json:
        print_json({
            "output": str(result.output),
            "recipe": result.recipe.name,
            "prompt_template": result.prompt_template,
            "template_source": result.template_source,
            "warnings": warnings,
            "notes": list(result.notes),
            "next": next_command,
        })
        return EXIT_OK
    for message in warnings:
        warn(message)
    print(f"wrote {result.output} ({result.recipe.name}, prompt template {result.prompt_template} "
          f"from {result.template_source})")
    for note in result.notes:
        print(f"  note: {note}", file=sys.stderr)
    print(f"next: {next_command}")
    print(f"      (it validates first; `xtuner-recipes plan {shlex.quote(str(result.output))}` prints every command "
          "to the chat)")
    return EXIT_OK
