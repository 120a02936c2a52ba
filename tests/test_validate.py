"""validate end to end: one invalid fixture per finding code, clean configs, both output formats."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from conftest import FIXTURES, write_jsonl
from tiny_model import build_tiny_model
from xtuner_recipes.resources import resource_path
from xtuner_recipes.validate import CODES

INVALID = FIXTURES / "invalid"
REPORT_SCHEMA = json.loads(resource_path("schemas", "report.schema.json").read_text())


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-chat")


def medqa_rows(count):
    return [
        {"question": f"Question {i}: which option is right?", "options": {"A": f"alpha {i}", "B": f"beta {i}"},
         "answer": f"beta {i}", "answer_idx": "B", "meta_info": "step1"}
        for i in range(count)
    ]


def validate(cli, *args):
    result = cli("validate", *args, "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    reports = json.loads(result.stdout)
    jsonschema.validate(reports, REPORT_SCHEMA)
    return result.returncode, reports


def plant(case, tmp_path, tiny_model, cli):
    """Generate a clean config for the case's recipe, then plant the case's mistake."""
    model = tmp_path / case.get("model_dir", "model-chat")
    kind = case.get("model", "tiny")
    if kind in ("tiny", "no-config", "no-tokenizer", "bad-tokenizer"):
        shutil.copytree(tiny_model, model)
        if kind == "no-config":
            (model / "config.json").unlink()
        if kind == "no-tokenizer":
            for name in ("tokenizer.model", "tokenizer_config.json", "tokenizer.json"):
                (model / name).unlink(missing_ok=True)
        if kind == "bad-tokenizer":
            (model / "tokenizer.model").write_bytes(b"this is not a sentencepiece model")
        config = json.loads((model / "config.json").read_text()) if kind != "no-config" else None
        if config is not None:
            config.update(case.get("model_config", {}))
            (model / "config.json").write_text(json.dumps(config))
    model_arg = {"missing": str(tmp_path / "nowhere"), "hub": "internlm/internlm-chat-7b"}.get(kind, str(model))
    data = tmp_path / "train.jsonl"
    if "rows" in case:
        data.write_text("\n".join(case["rows"]) + "\n")
    elif case["recipe"] == "oasst1":
        write_jsonl(data, [{"text": f"### Human: hello {i}### Assistant: hi {i}"} for i in range(40)])
    else:
        write_jsonl(data, medqa_rows(40))
    data_arg = str(tmp_path / "absent.jsonl") if case.get("data") == "missing" else str(data)
    sets = ["pack_to_max_length=False", *case.get("set", [])]
    out = tmp_path / "cfg.py"
    args = ["gen", case["recipe"], "--model", model_arg, "--data", data_arg, "-o", out]
    cli(*args, *[x for s in sets for x in ("--set", s)], check_rc=0)
    if case.get("data") == "hub":
        text = out.read_text().replace('path="json", data_files=dict(train=data_path)', "path=data_path")
        out.write_text(text.replace(f'data_path = "{data_arg}"', 'data_path = "timdettmers/openassistant-guanaco"'))
    return out


@pytest.mark.parametrize("fixture", sorted(INVALID.glob("*.json")), ids=lambda p: p.stem)
def test_planted_mistake_is_reported(fixture, tmp_path, tiny_model, cli):
    case = json.loads(fixture.read_text())
    config = plant(case, tmp_path, tiny_model, cli)
    extra = ["--gpu-mem", str(case["gpu_mem"])] if "gpu_mem" in case else []
    rc, (report,) = validate(cli, config, *extra)
    expect = case["expect"]
    found = [f for f in report["findings"] if f["code"] == expect["code"]]
    assert found, report["findings"]
    finding = found[0]
    assert finding["severity"] == expect["severity"]
    assert finding["key"] == expect.get("key", finding["key"])
    if expect.get("line"):
        line = config.read_text().splitlines()[finding["line"] - 1]
        assert line.startswith(expect["key"]) or expect["key"].split(".")[-1] in line, line
    if "row_line" in expect:
        assert finding["line"] == expect["row_line"] and f"train.jsonl:{expect['row_line']}" in finding["message"]
    assert rc == (1 if expect["severity"] == "error" else 0)


@pytest.mark.parametrize("fixture", sorted(INVALID.glob("*.py")), ids=lambda p: p.stem)
def test_source_mistake_is_reported(fixture, cli):
    rc, (report,) = validate(cli, fixture, "--level", "load")
    codes = [f["code"] for f in report["findings"]]
    assert fixture.stem in codes and rc == 1 and report["ok"] is False


def test_every_code_has_an_invalid_fixture():
    named = {p.stem for p in INVALID.iterdir()}
    missing = set(CODES) - named - {"E001", "E002", "E003", "E004"}  # machine findings: see test_environment_*
    assert not missing


def test_static_fixture_line_numbers(cli):
    _, (report,) = validate(cli, INVALID / "S001.py", "--level", "static")
    assert report["findings"][0]["line"] == 3
    _, (report,) = validate(cli, INVALID / "S003.py", "--level", "static")
    (finding,) = report["findings"]
    assert finding["key"] == "model.lora.r" and finding["line"] == 4


@pytest.mark.parametrize("recipe", ["medqa", "oasst1"])
def test_clean_generated_config_passes_full(recipe, tmp_path, tiny_model, cli):
    config = plant({"recipe": recipe}, tmp_path, tiny_model, cli)
    rc, (report,) = validate(cli, config)
    assert rc == 0 and report["ok"], report["findings"]
    assert {f["severity"] for f in report["findings"]} <= {"warning", "info"}
    stats = report["stats"]
    assert stats["rows"] == stats["usable_rows"] == 40
    assert stats["iters_per_epoch"] == 40 and stats["total_iters"] == 120 and stats["warmup_iters"] == 3
    assert stats["checkpoints"] == ["iter_120.pth"]
    assert 0 < stats["tokens_p50"] <= stats["tokens_p95"] <= stats["tokens_max"]


def test_clean_msagent_config_passes_full(tmp_path, tiny_model, cli):
    model = tmp_path / "agent-chat"
    shutil.copytree(tiny_model, model)
    rows = [json.loads(line) for line in (FIXTURES / "data" / "msagent.jsonl").read_text().splitlines()] * 20
    data = write_jsonl(tmp_path / "agent.jsonl", rows)
    cli("gen", "msagent", "--model", model, "--data", data, "-o", tmp_path / "a.py", "--set", "batch_size=1", check_rc=0)
    rc, (report,) = validate(cli, tmp_path / "a.py")
    assert rc == 0, report["findings"]
    assert report["stats"]["usable_rows"] == 60


def test_every_problem_reported_in_one_run(tmp_path, tiny_model, cli):
    case = {"recipe": "medqa", "model": "missing", "data": "missing", "set": ["lr=1e-4"]}
    config = plant(case, tmp_path, tiny_model, cli)
    text = config.read_text().replace("max_norm = 1", "max_norm = -1")
    config.write_text(text)
    rc, (report,) = validate(cli, config)
    assert {"S003", "M001", "D001"} <= {f["code"] for f in report["findings"]} and rc == 1


def test_text_format_groups_by_config_and_summarizes(cli):
    result = cli("validate", INVALID / "S003.py", FIXTURES / "valid" / "minimal_static.py", "--level", "static")
    assert result.returncode == 1
    assert f"{INVALID / 'S003.py'}:4: error S003 [model.lora.r]" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "2 config(s), 1 failed: 1 error(s), 0 warning(s), 0 note(s)"


def test_valid_fixture_is_clean(cli):
    rc, (report,) = validate(cli, FIXTURES / "valid" / "minimal_static.py", "--level", "load")
    assert rc == 0 and report["findings"] == []


def test_environment_findings_are_warnings_unless_strict(tmp_path, tiny_model, cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("E001 is about machines without a GPU; this one has one")
    config = plant({"recipe": "medqa"}, tmp_path, tiny_model, cli)
    rc, (report,) = validate(cli, config)
    assert rc == 0 and any(f["code"] == "E001" and f["severity"] == "warning" for f in report["findings"])
    rc, (report,) = validate(cli, config, "--strict-env")
    assert rc == 1 and any(f["code"] == "E001" and f["severity"] == "error" for f in report["findings"])


def test_static_level_imports_no_torch():
    code = (
        "import sys; from xtuner_recipes.validate import validate_config; "
        f"r = validate_config({str(INVALID / 'S003.py')!r}, level='static'); "
        "print([m for m in ('torch', 'mmengine', 'xtuner', 'transformers') if m in sys.modules], r.ok)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[] False", result.stderr


def test_no_false_alarms_on_shipped_configs(xtuner_configs, cli):
    """Every shipped config: no error at static; at load, errors only where imports genuinely fail here."""
    root = xtuner_configs[0].parents[0]
    while root.name != "configs":
        root = root.parent
    every = sorted(p for p in root.rglob("*.py") if p.name != "__init__.py")
    assert len(every) == 593
    rc, reports = validate(cli, *every, "--level", "static")
    assert rc == 0 and all(r["ok"] for r in reports)
    rc, reports = validate(cli, *every, "--level", "load")
    not_installed = ("modelscope", "openmind", "llava", "deepseek_v2")
    for report in reports:
        for finding in report["findings"]:
            if finding["severity"] == "error":
                assert any(name in finding["message"] for name in not_installed), (report["config"], finding)
    assert sum(not r["ok"] for r in reports) <= 12


def test_text_report_puts_data_row_lines_on_the_data_file():
    from xtuner_recipes.validate import ConfigReport, Finding
    from xtuner_recipes.validate.report import render_text

    report = ConfigReport("cfg.py", [
        Finding("D002", "error", "train.jsonl:7 cannot be read: not valid JSON", key="data_path", line=7),
        Finding("S003", "error", "lr: -1 is less than the minimum of 0", key="lr", line=12),
    ])
    text = render_text([report])
    assert "  cfg.py: error D002 [data_path] train.jsonl:7 cannot be read" in text
    assert "  cfg.py:12: error S003 [lr]" in text
    assert "cfg.py:7" not in text


def test_memory_estimate_parts_and_scaling():
    from xtuner_recipes.validate.memory import Arch, Run, estimate

    arch = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)
    short, long = estimate(arch, Run(max_length=512)), estimate(arch, Run(max_length=2048))
    # The weights do not grow with the sequence; the logits do, 4x for 4x the tokens.
    assert short.parts["weights"] == long.parts["weights"]
    assert long.parts["logits_and_loss"] == pytest.approx(4 * short.parts["logits_and_loss"], rel=1e-3)
    assert short.peak_gib < long.peak_gib
    # 4-bit NF4 with double quant holds the decoder's 6.48e9 linear weights in about 3.1 GiB.
    lora = estimate(arch, Run(max_length=512, quantization="none"))
    assert lora.parts["weights"] > 4 * short.parts["weights"] - 13  # fp32 base vs 4-bit + fp32 embeddings
    zero3 = estimate(arch, Run(max_length=512, zero_stage=3, gpus=8))
    assert zero3.parts["weights"] == short.parts["weights"]  # ZeRO-3 does not shard 4-bit weights
    assert zero3.parts["optimizer_states"] == pytest.approx(short.parts["optimizer_states"] / 8, rel=1e-3)


def test_memory_estimate_in_the_report(tmp_path, tiny_model, cli):
    config = plant({"recipe": "medqa"}, tmp_path, tiny_model, cli)
    rc, (report,) = validate(cli, config, "--gpu-mem", "80")
    assert rc == 0 and report["stats"]["gpu_mem_gib"] == 80
    parts = report["stats"]["estimated_memory_gib"]
    assert 0 < report["stats"]["estimated_peak_gib"] < 1 and set(parts) >= {"weights", "logits_and_loss"}


def test_mistakes_planted_in_a_copy_cfg_config(tmp_path, tiny_model, cli):
    """The tutorial's way: `xtuner copy-cfg`, then hand edits (here with `set`), then one validate run."""
    xtuner = shutil.which("xtuner", path=str(Path(sys.executable).parent))
    subprocess.run([xtuner, "copy-cfg", "internlm_chat_7b_qlora_oasst1_e3", str(tmp_path)], check=True,
                   capture_output=True, cwd=tmp_path)
    copied = next(tmp_path.glob("internlm_chat_7b_qlora_oasst1_e3*.py"))
    rows = [{"text": f"### Human: hi {i}### Assistant: hello {i}"} for i in range(60)]
    rows[6] = {"title": "no text"}  # line 7
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    cli("set", copied, "max_length=4096", "--model", tiny_model, "--data", data, "--in-place", check_rc=0)
    text = copied.read_text()
    assert "\nlr = 2e-4\n" in text  # `set` refuses lr=-1; a hand edit does not
    text = text.replace("\nlr = 2e-4\n", "\nlr = -1\n").replace("from mmengine.optim import", "from mmengine.optimm import", 1)
    copied.write_text(text)
    rc, (report,) = validate(cli, copied)
    found = {f["code"]: f for f in report["findings"]}
    assert rc == 1 and "S003" in found and ({"L001", "L002"} & set(found)), found
    assert found["S003"]["key"] == "lr" and copied.read_text().splitlines()[found["S003"]["line"] - 1].startswith("lr")
    # The import fixed, the data and model mistakes show up in the same single run.
    copied.write_text(copied.read_text().replace("from mmengine.optimm import", "from mmengine.optim import"))
    rc, (report,) = validate(cli, copied)
    found = {f["code"]: f for f in report["findings"]}
    assert rc == 1 and {"S003", "D003", "M005"} <= set(found), found
    assert found["D003"]["line"] == 7 and "train.jsonl:7" in found["D003"]["message"]
    assert found["M005"]["key"] == "max_length"


def test_lone_surrogate_escape_is_a_bad_row_as_datasets_finds(tmp_path, tiny_model, cli):
    """json accepts "\\ud800"; the datasets library's JSON reader fails on the whole file."""
    good = json.dumps(medqa_rows(1)[0])
    case = {"recipe": "medqa", "rows": [good, good.replace("beta 0", "beta \\ud800"), good.replace("0", "\\ud83d\\ude42")]}
    config = plant(case, tmp_path, tiny_model, cli)
    rc, (report,) = validate(cli, config)
    bad = [f for f in report["findings"] if f["code"] == "D002"]
    assert rc == 1 and [f["line"] for f in bad] == [2] and "surrogate" in bad[0]["message"], report["findings"]
    assert report["stats"]["usable_rows"] == 2  # a proper pair (an emoji) is fine
    from datasets import load_dataset

    with pytest.raises(Exception, match="generating the dataset"):
        load_dataset("json", data_files=str(tmp_path / "train.jsonl"), cache_dir=str(tmp_path / "hf"))


def test_progress_follows_reading_and_tokenizing(tmp_path, tiny_model, cli):
    from xtuner_recipes.validate import validate_config

    config = plant({"recipe": "medqa", "rows": [json.dumps(r) for r in medqa_rows(1200)]}, tmp_path, tiny_model, cli)
    calls = []
    report = validate_config(str(config), progress=lambda *call: calls.append(call))
    assert report.ok, report.findings
    stages = {what: [(done, total) for w, done, total in calls if w == what] for what, _, _ in calls}
    assert list(stages) == ["rows read", "texts tokenized"]
    assert stages["rows read"][-1] == (1200, 1200) and stages["rows read"][0] == (500, None)
    assert stages["texts tokenized"] == [(1000, 2400), (2000, 2400), (2400, 2400)]  # input and output per turn
