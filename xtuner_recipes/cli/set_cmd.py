"""``xtuner-recipes set CONFIG KEY=VALUE...``: edit any xtuner config, keeping everything else."""

import dataclasses
import difflib
import os
import sys
from pathlib import Path

from xtuner_recipes.cli.common import EXIT_OK, EXIT_USAGE, add_command
from xtuner_recipes.fileio import write_atomic
from xtuner_recipes.paths import refuse_large_config

EXAMPLES = """  xtuner-recipes set internlm_chat_7b_qlora_oasst1_e3.py lr=1e-5 max_epochs=1 -o mine.py
  xtuner-recipes set mine.py model.lora.r=16 '~model.llm.quantization_config' --in-place
  xtuner-recipes set mine.py --model ./internlm-chat-7b --data ./train.jsonl --diff
  xtuner-recipes set mine.py param_scheduler.0.start_factor=1e-4 prompt_template=internlm2_chat
  xtuner-recipes set mine.py --gpus 8 --in-place
  xtuner-recipes set alpaca_enzh.py --data alpaca_en_path=./en.jsonl -o mine.py   # a config with several datasets"""


def add_parser(commands) -> None:
    parser = add_command(
        commands, "set", "Apply overrides to an xtuner config's source; print, write or diff the result.", EXAMPLES, run
    )
    parser.add_argument("config", type=Path, metavar="CONFIG")
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="KEY=VALUE or ~KEY (dotted paths allowed)")
    parser.add_argument("--model", metavar="PATH", help="set pretrained_model_name_or_path")
    parser.add_argument("--data", metavar="[NAME=]PATH",
                        help="set data_path (or the variable NAME, e.g. alpaca_en_path=./en.jsonl); "
                             "local JSON switches the loader that reads it to json")
    parser.add_argument("--gpus", type=int, metavar="N",
                        help="divide accumulative_counts by N to keep the config's 1-GPU global batch on N GPUs")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, metavar="OUT", help="write the result to OUT")
    where.add_argument("--in-place", action="store_true", help="rewrite CONFIG itself")
    where.add_argument("--diff", action="store_true", help="print a unified diff; write nothing")
    parser.add_argument("--force", action="store_true",
                        help="overwrite OUT if it exists (a regular file only); with --in-place, a read-only CONFIG")


def run(args) -> int:
    from xtuner_recipes.generate import normalize_template  # libcst: only when rewriting
    from xtuner_recipes.rewrite import apply_overrides, parse_override

    if args.in_place:
        # --in-place edits what the name points at: a symlinked config's target, kept a regular file.
        args.config = Path(os.path.realpath(args.config))
    try:
        if args.config.exists() and not args.config.is_file():
            raise OSError(f"{args.config} is not a regular file")
        refuse_large_config(args.config, os.stat(args.config).st_size)
        with open(args.config, encoding="utf-8", newline="") as handle:  # keep CRLF line endings
            source = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        print(f"error: cannot read {args.config}: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.in_place and not os.stat(args.config).st_mode & 0o222 and not args.force:  # root can write it anyway
        print(f"error: {args.config} is read-only; not rewritten\n  hint: pass --force to rewrite it anyway",
              file=sys.stderr)
        return EXIT_USAGE
    if len(args.overrides) > MAX_OVERRIDES:
        print(f"error: {len(args.overrides)} overrides: at most {MAX_OVERRIDES} at a time\n  hint: split them over "
              "several `set` runs", file=sys.stderr)
        return EXIT_USAGE
    overrides = [normalize_template(parse_override(text)) for text in args.overrides]
    model_notes, model_edits = [], []
    if args.model is not None:
        from xtuner_recipes.rewrite.model_path import set_model_path

        # Every consumer of the model's path (LLM, tokenizer, image processor), inline or through a variable.
        source_for_overrides, model_edits, model_notes = set_model_path(source, args.model, str(args.config))
    else:
        source_for_overrides = source
    variable, data = _data_argument(args.data)
    literal = None
    if data is not None and "=" not in args.data:
        variable, literal = _data_variable(source_for_overrides, str(args.config))
    result = apply_overrides(source_for_overrides, overrides, data_path=data, data_variable=variable,
                             data_literal=literal, filename=str(args.config))
    result = dataclasses.replace(result, changed=tuple(model_edits) + result.changed)
    notes = model_notes + list(result.notes)
    if args.gpus is not None:
        from xtuner_recipes.batch import gpus_override

        edit, sentence = gpus_override(result.code, args.gpus, str(args.config))
        if edit is not None:
            extra = apply_overrides(result.code, [edit], filename=str(args.config))
            result = dataclasses.replace(result, code=extra.code, changed=result.changed + extra.changed)
        notes.append(sentence + " (assuming the config's accumulative_counts was for 1 GPU)")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.diff:
        sys.stdout.writelines(
            difflib.unified_diff(
                source.splitlines(keepends=True), result.code.splitlines(keepends=True),
                fromfile=str(args.config), tofile=str(args.config),
            )
        )
        return EXIT_OK
    if args.in_place:
        write_atomic(args.config, result.code, force=True, original=source)
        print(f"updated {args.config}: {', '.join(result.changed) or 'no change'}", file=sys.stderr)
    elif args.output is not None:
        write_atomic(args.output, result.code, force=args.force)
        print(f"wrote {args.output}: {', '.join(result.changed) or 'no change'}", file=sys.stderr)
    else:
        sys.stdout.write(result.code)
    return EXIT_OK


MAX_OVERRIDES = 1000  # each is one libcst pass over the config: 10,000 took minutes


def _data_variable(source: str, filename: str) -> tuple[str, str | None]:
    """``(variable, None)``: the variable ``--data PATH`` sets, ``data_path``, else the one variable the config's
    dataset loaders read (``alpaca_en_path``…; several: the user says which). ``(variable, literal)`` when no
    variable is read and the loaders write one path in place (a dumped config, by hand): that literal is edited."""
    from xtuner_recipes.errors import OverrideError
    from xtuner_recipes.rewrite.data_path import loader_literals, loader_paths, loader_variables
    from xtuner_recipes.rewrite.locate import bindings

    from xtuner_recipes.rewrite.api import parse_config

    try:
        if "data_path" in bindings(parse_config(source, filename)):
            return "data_path", None
        variables, inline = loader_variables(source)
        literals = loader_literals(source) if not variables else []
    except OverrideError:
        return "data_path", None  # apply_overrides reports the syntax error with its line
    if len(variables) == 1 and not inline:
        return variables[0], None
    if len(literals) == 1:
        return "data_path", literals[0]
    paths = loader_paths(source) if not variables and not literals else []
    if len(paths) == 1:  # POLAR's path="/your/custom/path/here", a GUI's path='': the one loader's placeholder
        return "data_path", "path=" + paths[0]
    if len(variables) > 1:
        raise OverrideError(f"{filename} loads {len(variables)} datasets ({', '.join(variables)}): say which one "
                            "--data sets", hint=f"--data {variables[0]}=PATH")
    raise OverrideError(f"{filename}: no dataset loader reads a top-level variable (the path is written in the "
                        "loader itself)", hint="edit the loader's data_files=... by its dotted key")


def _data_argument(value: str | None) -> tuple[str, str | None]:
    """``--data PATH`` or ``--data NAME=PATH`` (NAME a Python identifier: ``alpaca_en_path=./en.jsonl``)."""
    if value is None:
        return "data_path", None
    name, sep, path = value.partition("=")
    if sep and name.isidentifier():
        return name, path
    return "data_path", value
