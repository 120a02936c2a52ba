"""Every config shipped with the installed xtuner, made local the way a user would, through `validate --level full`.

One process for the whole sweep (mmengine, torch and xtuner import once). Each config that
defines ``train_dataloader`` gets the tiny test model in place of its hub model and, for each
dataset whose loader reads a hub id, a small local JSONL in the format its map function reads,
through this tool's own rewriter (``set --model`` and ``set --data NAME=PATH``). Then: no internal
error, the data read wherever it is files, and no error finding but the ones xtuner fails on too.
"""

import ast
import importlib
import json
from pathlib import Path

import pytest

from tiny_model import build_tiny_model
from xtuner_recipes.rewrite import apply_overrides, parse_override
from xtuner_recipes.validate import validate_config
from xtuner_recipes.validate.data.leaves import find, qualified
from xtuner_recipes.compat.mmengine import settings

pytestmark = pytest.mark.slow

FIXTURE_DATA = Path(__file__).parent / "fixtures" / "data"
LONG = " ".join(f"word{i}" for i in range(60))  # rows long enough that packing leaves several samples


def universal_row(i: int) -> dict:
    """One record with the fields every xtuner map function reads (alpaca, alpaca_zh, oasst1, openai,
    pretrain, code_alpaca, colors, arxiv, law, sql, openorca, tiny_codes, medical, stack_exchange…)."""
    text = f"question {i} {LONG}"
    return {
        "instruction": text, "input": "", "output": f"answer {i} {LONG}",
        "instruction_zh": text, "input_zh": "", "output_zh": f"answer {i}",
        "text": f"### Human: {text}### Assistant: answer {i} {LONG}",
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": f"answer {i} {LONG}"}],
        "conversation": [{"input": text, "output": f"answer {i} {LONG}"}],
        "prompt": text, "completion": f"answer {i}", "response": f"answer {i} {LONG}",
        "question": text, "answer": f"answer {i}", "context": "CREATE TABLE t (a int)",
        "system_prompt": "You are helpful.", "abstract": text, "title": f"title {i}",
        "color": "#ff0000", "description": text,
        "conversations": [{"from": "human", "value": text}, {"from": "gpt", "value": f"answer {i} {LONG}"}],
    }


def rows_for(map_fn_name: str | None) -> list[dict]:
    if map_fn_name == "msagent_react_map_fn":
        rows = [json.loads(line) for line in (FIXTURE_DATA / "msagent.jsonl").read_text().splitlines()]
        return (rows * (300 // len(rows) + 1))[:300]
    return [universal_row(i) for i in range(300)]


@pytest.fixture(scope="session")
def stand_in_model(tmp_path_factory) -> Path:
    # Positions enough for every shipped max_length; weights are never loaded by validate.
    return build_tiny_model(tmp_path_factory.mktemp("stand-in") / "stand-in-chat", max_position_embeddings=1 << 21,
                            weights=False)


def _string_variables(source: str) -> dict[str, tuple[str, ...]]:
    """Top-level ``name = "literal"`` (or a list of them) bindings: the variables a loader's source comes from."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            values = value if isinstance(value, list) else [value]
            if values and all(isinstance(v, str) for v in values):
                found[node.targets[0].id] = tuple(values)
    return found


def _strings(loader: dict):
    """The strings a loader reads from: path, dataset_name, data_files (a string, list or dict)."""
    for key in ("path", "dataset_name", "data_files", "data_dir"):
        value = dict.get(loader, key)
        values = dict.values(value) if isinstance(value, dict) else value if isinstance(value, list | tuple) else [value]
        for item in values:
            if isinstance(item, str):
                yield item
            elif isinstance(item, list | tuple):
                yield from (x for x in item if isinstance(x, str))


def make_local(path: Path, model: Path, folder: Path, config=None) -> tuple[Path, int] | None:
    """The config with the stand-in model and local data; None when it trains no train_dataloader.
    Returns the new config and how many of its datasets now read local files. ``config``: ``path`` loaded
    already (read, not changed); an exception in its place is raised."""
    from mmengine.config import Config

    if isinstance(config, Exception):
        raise config
    config = Config.fromfile(str(path)) if config is None else config
    if "train_dataloader" not in config:
        return None
    source = path.read_text(encoding="utf-8")
    overrides = [parse_override(f"pretrained_model_name_or_path={str(model)!r}")] \
        if "pretrained_model_name_or_path" in _string_variables(source) else []
    result = apply_overrides(source, overrides, filename=str(path))
    source = result.code
    leaves, _ = find(dict.get(settings(config), "train_dataloader"))
    made = 0
    for number, leaf in enumerate(leaves):
        loader = leaf.get("dataset")
        hub = set(_strings(loader)) - {"json"} if isinstance(loader, dict) else set()
        names = [n for n, v in _string_variables(source).items() if set(v) & hub]
        switchable = isinstance(loader, dict) and qualified(dict.get(loader, "type")) in ("load_dataset", "MsDataset.load")
        if not names or not switchable:
            continue  # another hub's loader (openMind): validate says it does not read it
        data = folder / f"data{number}.jsonl"
        map_fn = leaf.get("dataset_map_fn")
        name = qualified(map_fn).rsplit(".", 1)[-1] if map_fn is not None and not isinstance(map_fn, str) else map_fn
        data.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows_for(name)))
        source = apply_overrides(source, [], data_path=str(data), data_variable=names[0], filename=str(path)).code
        made += 1
    out = folder / path.name
    out.write_text(source, encoding="utf-8")
    return out, made


def failing_module(message: str) -> str | None:
    """The module an L002 names: Python's "No module named 'x'", or mmengine's "Failed to import x in …"."""
    import re

    found = re.search(r"No module named '([\w.]+)'", message) or re.search(r"Failed to import ([\w.]+) in ", message)
    return found.group(1) if found else None


def import_fails(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any import failure is xtuner failing to load the config too
        return True
    return False


def warmup_fails(end: int) -> bool:
    import torch
    from mmengine.optim import LinearLR

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    try:
        LinearLR(optimizer, begin=0, end=end, start_factor=1e-5)
    except ValueError:
        return True
    return False


SHARDS = 4  # the sweep in four parts, so that pytest-xdist spreads it over the cores
# Drawing a report (four charts) is most of a config's time here: 75 of the 587 configs get one (every config
# still goes through every check the report draws from), which keeps the suite inside its 12 minutes.
DRAW_EVERY = 8
# Configs whose datasets are process_hf_dataset leaves, read in each part (450 of the 587 in all, at least).
READ_AT_LEAST = (113, 113, 112, 112)


@pytest.mark.parametrize("shard", range(SHARDS))
def test_every_shipped_config_validates_without_false_errors(shard, xtuner_configs, shipped_loaded, stand_in_model,
                                                             tmp_path):
    from xtuner_recipes.report import render

    checked, unread, problems, pages, drawn = 0, {}, [], 0, 0
    for position, (number, path) in enumerate(list(enumerate(xtuner_configs))[shard::SHARDS]):
        folder = tmp_path / str(number)
        folder.mkdir()
        try:
            made = make_local(path, stand_in_model, folder, shipped_loaded[path])
        except Exception as error:  # noqa: BLE001 - configs that mmengine itself cannot load are L001's business
            problems.append((path.name, f"could not be made local: {type(error).__name__}: {error}"))
            continue
        if made is None:
            continue
        local, datasets_made = made
        keep: dict = {}
        report = validate_config(str(local), level="full", tokenizer_process=False, keep=keep)
        if report.internal_error:
            problems.append((path.name, report.internal_error))
        if position % DRAW_EVERY == 0:  # the HTML report of one config in DRAW_EVERY (see DRAW_EVERY)
            drawn += 1
            try:  # the report of a config we didn't write: drawn from what validate found
                page = render(report, keep.get("context"))
            except Exception as error:  # noqa: BLE001 - any failure of the report is a problem to list
                problems.append((path.name, f"--report: {type(error).__name__}: {error}"))
            else:
                if len(page.encode()) >= 1024 ** 2 or 'id="verdict"' not in page:
                    problems.append((path.name, f"--report: {len(page.encode())} bytes"))
                pages += 1
        for finding in report.findings:
            if finding.severity != "error":
                continue
            # An unresolvable import fails in xtuner too (modelscope, openmind, deepseek_v2 here):
            # shown by importing the module the finding names.
            if finding.code == "L002" and failing_module(finding.message):
                if import_fails(failing_module(finding.message)):
                    continue
            # Small stand-in data at 32k-1M tokens a sample packs into a few samples: a warmup of zero
            # iterations, which mmengine refuses (shown here with its own LinearLR).
            if finding.code == "C001" and warmup_fails(report.stats["warmup_iters"]):
                continue
            if finding.code == "C006" and "begin=0, end=0" in finding.message and warmup_fails(0):
                continue  # the same, where the config computes its warmup in its own way
            problems.append((path.name, f"{finding.code} {finding.key}: {finding.message}"))
        per_leaf = report.stats.get("datasets", [])
        read = [leaf for leaf in per_leaf if leaf.get("rows")]
        if datasets_made and len(read) < datasets_made:
            problems.append((path.name, f"{datasets_made} datasets made local, {len(read)} read: {per_leaf}"))
        for leaf in read:
            if not leaf.get("usable_rows"):
                problems.append((path.name, f"{leaf['key']}: no usable rows"))
        checked += bool(read)
        for finding in report.findings:
            if finding.code == "D006":
                unread[finding.message.split(": data not checked: ")[-1][:60]] = path.name
    assert not problems, "\n".join(f"{name}: {why}" for name, why in problems[:40]) + f"\n({len(problems)} in all)"
    # Every config whose datasets are process_hf_dataset leaves was read; the rest say why not.
    assert checked >= READ_AT_LEAST[shard], (checked, unread)
    assert pages == drawn and drawn >= 15, (pages, drawn)
    assert all("hub" not in why or "no local copy" in why for why in unread), unread
