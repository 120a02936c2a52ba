"""What ``validate --level full`` says about every config xtuner ships and the three recipes, as one JSON file.

Run it before and after a change to the validator; the two files must be equal (the findings, in order, and
every stat). Paths under the work folder are written as ``<work>`` so that two runs compare.

    python benchmarks/validate_snapshot.py --work /tmp/snap --out before.json
    python benchmarks/validate_snapshot.py --work /tmp/snap --out after.json && cmp before.json after.json

The work folder keeps the tiny models it built, so both runs read the very same tokenizer files.
"""

import argparse
import contextlib
import io
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

RECIPES = {"oasst1": "oasst1.jsonl", "medqa": "medqa_us.jsonl", "msagent": "msagent.jsonl"}


def recipe_configs(work: Path, model: Path) -> list[Path]:
    from xtuner_recipes.cli import main

    folder = work / "recipes"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    made = []
    for recipe, name in RECIPES.items():
        rows = (ROOT / "tests" / "fixtures" / "data" / name).read_text(encoding="utf-8").splitlines()
        data = folder / f"{recipe}.jsonl"
        data.write_text("\n".join(rows * 60) + "\n", encoding="utf-8")
        config = folder / f"{recipe}.py"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["gen", recipe, "--model", str(model), "--data", str(data), "-o", str(config)]) == 0
        made.append(config)
    return made


def shipped_configs(work: Path, model: Path) -> list[Path]:
    from test_shipped_configs import make_local

    from xtuner_recipes.xtuner_info import source_dir

    folder = work / "shipped"
    shutil.rmtree(folder, ignore_errors=True)
    made = []
    root = source_dir() / "configs"
    paths = sorted(p for p in root.rglob("*.py")
                   if p.name != "__init__.py" and "__main__" not in p.read_text(encoding="utf-8"))
    for number, path in enumerate(paths):
        place = folder / str(number)
        place.mkdir(parents=True)
        try:
            local = make_local(path, model, place)
        except Exception:  # noqa: BLE001 - configs mmengine can't load: validated as they are
            local = None
        made.append(local[0] if local else path)
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from tiny_model import build_tiny_model

    from xtuner_recipes.validate import validate_config

    args.work.mkdir(parents=True, exist_ok=True)
    tiny, stand_in = args.work / "models" / "tiny-chat", args.work / "models" / "stand-in-chat"
    if not tiny.is_dir():
        build_tiny_model(tiny)
    if not stand_in.is_dir():
        build_tiny_model(stand_in, max_position_embeddings=1 << 21, weights=False)
    configs = recipe_configs(args.work, tiny) + shipped_configs(args.work, stand_in)
    results = []
    for number, config in enumerate(configs):
        report = validate_config(str(config), level="full", tokenizer_process=False)
        results.append(report.as_dict())
        if number % 50 == 0:
            print(f"{number}/{len(configs)}", file=sys.stderr, flush=True)
    text = json.dumps(results, indent=1, sort_keys=True, default=str).replace(str(args.work), "<work>")
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"{len(results)} configs -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
