"""``xtuner-recipes prepare TASK INPUT... -o OUTDIR``: raw dataset files → xtuner-ready JSONL."""

import sys
from pathlib import Path

from xtuner_recipes.cli.common import EXIT_FINDINGS, EXIT_OK, add_command, print_json

EXAMPLES = """  xtuner-recipes prepare medqa MedQA2019.xlsx -o medqa --test-ratio 0.3 --seed 1
  xtuner-recipes prepare medqa US/train.jsonl Mainland/train.jsonl -o medqa
  xtuner-recipes prepare msagent MSAgent-Bench/train.jsonl -o msagent --skip-bad
  xtuner-recipes prepare oasst1 openassistant_best_replies_train.jsonl -o oasst1 --json"""
SHOWN = 20  # bad rows listed; all are counted


def add_parser(commands) -> None:
    parser = add_command(commands, "prepare", "Convert raw MedQA, MS-Agent or OASST1 files to xtuner's conversation JSONL.",
                         EXAMPLES, run)
    parser.add_argument("task", metavar="TASK", choices=("medqa", "msagent", "oasst1"), help="%(choices)s")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="JSONL, JSON array or (medqa) the tutorial's DrugQA .xlsx; several are combined")
    parser.add_argument("-o", "--outdir", type=Path, required=True, metavar="OUTDIR",
                        help="writes OUTDIR/train.jsonl, test.jsonl (with --test-ratio) and manifest.json")
    parser.add_argument("--test-ratio", type=float, default=0.0, metavar="R", help="share for test.jsonl (default: 0)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="split seed (default: 0)")
    parser.add_argument("--skip-bad", action="store_true", help="write the good rows and report the bad ones")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _progress():
    if not sys.stderr.isatty():
        return None

    def show(rows: int, done: int, total: int) -> None:
        share = f" ({100 * done / total:.0f}% of input)" if total else ""
        sys.stderr.write(f"\r  {rows:,} rows read{share}")
        sys.stderr.flush()

    return show


def render_text(result) -> str:
    lines = []
    if result.bad:
        lines.append(f"{len(result.bad)} bad row(s):")
        lines += [f"  {where}: {reason}" for where, reason in result.bad[:SHOWN]]
        if len(result.bad) > SHOWN:
            lines.append(f"  … and {len(result.bad) - SHOWN} more (--json lists them all)")
    splits = ", ".join(f"{name} {count}" for name, count in result.written.items())
    if result.ok:
        lines.append(f"{result.task}: {result.rows_in} rows in, {sum(result.written.values())} written ({splits}), "
                     f"{len(result.bad)} skipped as bad, {result.duplicates} duplicate{'' if result.duplicates == 1 else 's'} → {result.outdir}")
    elif result.looks_like:
        lines.append(f"{result.task}: {result.rows_in} rows in, none of them {result.task}'s: they read as "
                     f"{result.looks_like} rows; run `xtuner-recipes prepare {result.looks_like} …` on them")
    elif result.bad and not result.skip_bad:
        lines.append(f"{result.task}: {result.rows_in} rows in, nothing written: fix the rows above, "
                     "or pass --skip-bad to write the others")
    else:
        lines.append(f"{result.task}: {result.rows_in} rows in, no usable row: nothing written")
    return "\n".join(lines)


def run(args) -> int:
    from xtuner_recipes.prepare import prepare

    result = prepare(args.task, args.inputs, args.outdir, test_ratio=args.test_ratio, seed=args.seed,
                     skip_bad=args.skip_bad, force=args.force, progress=None if args.json else _progress())
    if not args.json and sys.stderr.isatty():
        sys.stderr.write("\n")
    print_json(result.to_json()) if args.json else print(render_text(result))
    return EXIT_OK if result.ok else EXIT_FINDINGS
