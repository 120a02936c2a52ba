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


def medqa_rows(count):
    return [
        {"question": f"Question {i}: which option is right?", "options": {"A": f"alpha {i}", "B": f"beta {i}"},
         "answer": f"beta {i}", "answer_idx": "B", "meta_info": "step1"}
        for i in range(count)
    ]


def validate(cli, *args):
    """`xtuner-recipes validate ARGS --format json`, run in this process (torch and xtuner import once
    for the whole module; the console script itself is run by the tests that use `cli` directly)."""
    import contextlib
    import io

    from xtuner_recipes.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["validate", *map(str, args), "--format", "json"])
    assert rc in (0, 1), err.getvalue()
    reports = json.loads(out.getvalue())
    jsonschema.validate(reports, REPORT_SCHEMA)
    return rc, reports


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
        if "tokenizer_config" in case:
            settings = json.loads((model / "tokenizer_config.json").read_text())
            (model / "tokenizer_config.json").write_text(json.dumps({**settings, **case["tokenizer_config"]}))
        if "special_tokens_map" in case:
            settings = json.loads((model / "special_tokens_map.json").read_text())
            (model / "special_tokens_map.json").write_text(json.dumps({**settings, **case["special_tokens_map"]}))
    model_arg = {"missing": str(tmp_path / "nowhere"), "hub": "internlm/internlm-chat-7b"}.get(kind, str(model))
    data = tmp_path / "train.jsonl"
    if "rows" in case:
        data.write_text("\n".join(case["rows"]) + "\n")
    elif "rows_file" in case:
        data.write_text((FIXTURES / "data" / case["rows_file"]).read_text() * 40)
    elif case["recipe"] == "oasst1":
        write_jsonl(data, [{"text": f"### Human: hello {i}### Assistant: hi {i}"} for i in range(40)])
    else:
        write_jsonl(data, medqa_rows(40))
    data_arg = str(tmp_path / "absent.jsonl") if case.get("data") == "missing" else str(data)
    if case.get("data") == "folder":  # a folder named where a file is expected (data_files=)
        (tmp_path / "rows").mkdir()
        data.rename(tmp_path / "rows" / "train.jsonl")
        data_arg = str(tmp_path / "rows")
    if case.get("data") == "fifo":
        import os

        os.mkfifo(tmp_path / "pipe.jsonl")
        data_arg = str(tmp_path / "pipe.jsonl")
    sets = ["pack_to_max_length=False", *case.get("set", [])]
    out = tmp_path / "cfg.py"
    args = ["gen", case["recipe"], "--model", model_arg, "--data", data_arg, "-o", out]
    cli(*args, *[x for s in sets for x in ("--set", s)], check_rc=0)
    for old, new in case.get("replace", []):  # a hand edit `set` would refuse
        text = out.read_text()
        assert old in text, old
        out.write_text(text.replace(old, new))
    if case.get("data") == "hub":
        text = out.read_text().replace('path="json", data_files=dict(train=data_path)', "path=data_path")
        out.write_text(text.replace(f'data_path = "{data_arg}"', 'data_path = "timdettmers/openassistant-guanaco"'))
    return out


@pytest.mark.parametrize("fixture", sorted(INVALID.glob("*.json")), ids=lambda p: p.stem)
def test_planted_mistake_is_reported(fixture, tmp_path, tiny_model, cli):
    case = json.loads(fixture.read_text())
    config = plant(case, tmp_path, tiny_model, cli)
    extra = ["--gpu-mem", str(case["gpu_mem"])] if "gpu_mem" in case else []
    extra += ["--host-mem", str(case["host_mem"])] if "host_mem" in case else []
    rc, (report,) = validate(cli, config, *extra)
    expect = case["expect"]
    found = [f for f in report["findings"] if f["code"] == expect["code"]]
    assert found, report["findings"]
    finding = found[0]
    assert finding["severity"] == expect["severity"]
    assert finding["key"] == expect["key"]  # every fixture names the key (null where the finding has none)
    if expect.get("line"):
        line = config.read_text().splitlines()[finding["line"] - 1]
        assert line.startswith(expect["key"]) or expect["key"].split(".")[-1] in line, line
    if "row_line" in expect:
        assert finding["line"] == expect["row_line"] and f"train.jsonl:{expect['row_line']}" in finding["message"]
    assert rc == case.get("rc", 1 if expect["severity"] == "error" else 0)
    assert report["internal_error"] is None


@pytest.mark.parametrize("fixture", sorted(INVALID.glob("*.py")), ids=lambda p: p.stem)
def test_source_mistake_is_reported(fixture, cli):
    rc, (report,) = validate(cli, fixture, "--level", "load")
    codes = [f["code"] for f in report["findings"]]
    assert fixture.stem in codes and rc == 1 and report["ok"] is False


def test_every_code_has_an_invalid_fixture():
    named = {p.stem for p in INVALID.iterdir()}
    missing = {c for c in set(CODES) - named if not c.startswith("E")}  # machine findings: test_doctor, test_machine_*
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
    rc, (report,) = validate(cli, FIXTURES / "valid" / "minimal_static.py", "--level", "static")
    assert rc == 0 and report["findings"] == []
    # It loads, but it is no training config: the Runner needs a model and a train_dataloader.
    rc, (report,) = validate(cli, FIXTURES / "valid" / "minimal_static.py", "--level", "load")
    assert rc == 1 and [f["code"] for f in report["findings"]] == ["L003"]


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


@pytest.mark.slow
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
            if finding["code"] == "L003":  # xtuner's helper scripts (convert_*.py) are no training configs
                assert "__main__" in Path(report["config"]).read_text(), (report["config"], finding)
            elif finding["severity"] == "error":
                assert any(name in finding["message"] for name in not_installed), (report["config"], finding)
    assert sum(not r["ok"] for r in reports) <= 12 + 6  # + the 6 helper scripts


def test_text_report_puts_data_row_lines_on_the_data_file():
    from xtuner_recipes.validate import ConfigReport, Finding
    from xtuner_recipes.validate.reporters import render_text

    report = ConfigReport("cfg.py", [
        Finding("D002", "error", "train.jsonl:7 cannot be read: not valid JSON", key="data_path", line=7),
        Finding("S003", "error", "lr: -1 is less than the minimum of 0", key="lr", line=12),
    ])
    text = render_text([report])
    assert "  cfg.py: error D002 [data_path] train.jsonl:7 cannot be read" in text
    assert "  cfg.py:12: error S003 [lr]" in text
    assert "cfg.py:7" not in text


def test_memory_estimate_parts_and_scaling():
    from xtuner_recipes.validate.estimate.gpu import NF4_BYTES, Arch, Run, estimate

    arch = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)
    short, long = estimate(arch, Run(max_length=512)), estimate(arch, Run(max_length=2048))
    # The weights do not grow with the sequence; the logits do, 4x for 4x the tokens.
    assert short.parts["weights"] == long.parts["weights"]
    assert long.parts["logits_and_loss"] == pytest.approx(4 * short.parts["logits_and_loss"], rel=1e-3)
    assert short.peak_gib < long.peak_gib
    # 4-bit NF4 with double quant holds the decoder's 6.48e9 linear weights in about 3.1 GiB.
    lora = estimate(arch, Run(max_length=512, quantization="none"))
    # Without quantization every weight is fp32 (6.476e9 decoder linears + 0.845e9 embeddings and lm_head).
    assert lora.parts["weights"] == pytest.approx((6_476_005_376 + 845_152_256) * 4 / 2**30, abs=1e-3)
    assert short.parts["weights"] < lora.parts["weights"] / 4  # 4-bit decoder, fp32 embeddings
    zero3 = estimate(arch, Run(max_length=512, zero_stage=3, gpus=8))
    # ZeRO-3 shards the 4-bit weights too (xtuner stores them in bf16 containers for it) and the engine's
    # 16-bit embeddings; on several GPUs DeepSpeed keeps up to 1e9 gathered 16-bit elements beside the
    # shards, on one it gathers a layer at a time (memory_deepspeed.py).
    nf4_linears = 6_476_005_376 * NF4_BYTES
    assert zero3.parts["weights"] == pytest.approx(((nf4_linears + 845_152_256 * 2) / 8 + 2e9) / 2**30, abs=1e-3)
    one = estimate(arch, Run(max_length=512, zero_stage=3, gpus=1))
    assert one.parts["weights"] == pytest.approx((nf4_linears + 845_152_256 * 2 + nf4_linears / 32) / 2**30, abs=1e-3)
    assert zero3.parts["optimizer_states"] == pytest.approx(short.parts["optimizer_states"] / 8, rel=1e-3)


def test_memory_estimate_in_the_report(tmp_path, tiny_model, cli):
    config = plant({"recipe": "medqa"}, tmp_path, tiny_model, cli)
    rc, (report,) = validate(cli, config, "--gpu-mem", "80", "--deepspeed", "none")
    assert rc == 0 and report["stats"]["gpu_mem_gib"] == 80
    parts = report["stats"]["estimated_memory_gib"]
    assert 0 < report["stats"]["estimated_peak_gib"] < 1 and set(parts) >= {"weights", "logits_and_loss"}
    assert report["stats"]["launch"] == {"deepspeed": None, "zero_stage": 0, "offload": [False, False], "gpus": 1,
                                         "nodes": 1}
    # By default the launch gen and plan print: ZeRO-2, whose gradient buckets (2 x 5e8 16-bit elements) a tiny
    # model's estimate shows
    rc, (default,) = validate(cli, config)
    assert default["stats"]["launch"]["deepspeed"] == "deepspeed_zero2" and default["stats"]["launch"]["zero_stage"] == 2
    assert default["stats"]["estimated_memory_gib"]["gradient_buckets"] == pytest.approx(1.863, abs=0.001)


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
    assert "C006" not in found  # the schedulers' misspelt import is L002's to report, not a refused schedule
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
    from xtuner_recipes.validate.inputs import Options

    report = validate_config(str(config), options=Options(progress=lambda *call: calls.append(call)))
    assert report.ok, report.findings
    stages = {what: [(done, total) for w, done, total in calls if w == what] for what, _, _ in calls}
    assert list(stages) == ["rows read", "texts tokenized"]
    assert stages["rows read"][-1] == (1200, 1200) and stages["rows read"][0] == (500, None)
    # a chunk of 1,000 rows at a time; input, output and llama2_chat's separator per turn, each encoded
    # on its own as xtuner does; the total once the data has been read
    assert stages["texts tokenized"] == [(3000, None), (3600, None), (3600, 3600)]


@pytest.mark.parametrize("edit, codes", [
    ([["max_epochs = 3", "max_epochs = 0"]], {"S003", "C005"}),
    ([["batch_size = 1  # per GPU", "batch_size = 2.0  # per GPU"]], {"S003", "C005"}),
    ([["lr = 2e-4", "lr = 1e999"]], {"S003"}),
    ([["warmup_ratio = 0.03", "warmup_ratio = 0"]], {"C006"}),  # LinearLR(begin=0, end=0): mmengine refuses it
    ([["from xtuner_recipes.map_fns import medqa_map_fn", "from xtuner_recipes.map_fns import medqa_map_fnn"],
      ["dataset_map_fn=medqa_map_fn", "dataset_map_fn=medqa_map_fnn"]], {"L002"}),
    ([["from torch.optim import AdamW", "from torch.optim import AdamWW as AdamW"]], {"L002"}),
    ([["from torch.optim import AdamW", "from bitsandbytes.optim import PagedAdamW32bit as AdamW"]], set()),
    ([["prompt_template = PROMPT_TEMPLATE.llama2_chat", "prompt_template = PROMPT_TEMPLATE.nope"]], {"S004"}),
], ids=["max_epochs=0", "batch_size=2.0", "lr=inf", "warmup_ratio=0", "mapper-import", "optimizer-import", "bitsandbytes-optimizer",
        "unknown-template"])
def test_mistakes_are_findings_never_tracebacks(edit, codes, tmp_path, tiny_model, cli):
    config = plant({"recipe": "medqa", "replace": edit}, tmp_path, tiny_model, cli)
    result = cli("validate", config, "--format", "json")
    assert "Traceback" not in result.stderr and result.returncode in (0, 1), result.stderr
    (report,) = json.loads(result.stdout)
    assert report["internal_error"] is None
    found = {f["code"] for f in report["findings"] if f["severity"] == "error"}
    assert codes <= found and result.returncode == (1 if found else 0), report["findings"]


def test_max_epochs_may_be_a_float_as_xtuner_takes_it(tmp_path, tiny_model, cli):
    config = plant({"recipe": "medqa", "replace": [["max_epochs = 3", "max_epochs = 3.0"]]}, tmp_path, tiny_model, cli)
    rc, (report,) = validate(cli, config)
    assert rc == 0 and report["stats"]["total_iters"] == 120, report


def test_empty_config_is_an_error_not_a_pass(tmp_path, cli):
    (tmp_path / "empty.py").write_text("# nothing here\n")
    rc, (report,) = validate(cli, tmp_path / "empty.py")
    assert rc == 1 and "L003" in {f["code"] for f in report["findings"]}


def test_checkpoint_names_follow_an_epoch_based_loop(tmp_path, tiny_model, cli):
    """The tutorial's 0.1.x shape: train_cfg=dict(by_epoch=True, ...) and a CheckpointHook saving every epoch."""
    config = plant({"recipe": "medqa", "replace": [
        ["train_cfg = dict(type=TrainLoop, max_epochs=max_epochs)",
         "train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)"],
        ["checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=save_steps, max_keep_ckpts=save_total_limit)",
         "checkpoint=dict(type=CheckpointHook, interval=1)"]]}, tmp_path, tiny_model, cli)
    rc, (report,) = validate(cli, config)
    assert report["stats"]["checkpoints"] == ["epoch_1.pth", "epoch_2.pth", "epoch_3.pth"], report
    plan = cli("plan", config, "--json")
    assert "epoch_3.pth" in plan.stdout


def test_sample_gives_estimates_not_schedule_errors(tmp_path, tiny_model, cli):
    """40 rows, warmup 0.03 over 1 epoch: 0 warmup iterations on a sample of 10 rows, 1 on the full data."""
    config = plant({"recipe": "medqa", "set": ["warmup_ratio=0.03", "max_epochs=1"]}, tmp_path, tiny_model, cli)
    rc, (report,) = validate(cli, config, "--sample", "10")
    stats = report["stats"]
    assert stats["schedule_estimated"] is True and stats["rows"] == 40 and stats["rows_checked"] == 10
    assert stats["total_iters"] == 40  # extrapolated from the sample to every row
    assert not [f for f in report["findings"] if f["code"].startswith("C") and f["severity"] == "error"]


def test_gzipped_jsonl_is_read_like_datasets_reads_it(tmp_path, tiny_model, cli):
    import gzip

    config = plant({"recipe": "medqa"}, tmp_path, tiny_model, cli)
    data = tmp_path / "train.jsonl"
    gz = tmp_path / "train.jsonl.gz"
    gz.write_bytes(gzip.compress(data.read_bytes()))
    config.write_text(config.read_text().replace(str(data), str(gz)))
    rc, (report,) = validate(cli, config)
    assert rc == 0 and report["stats"]["usable_rows"] == 40, report["findings"]


def test_concat_dataset_of_an_alpaca_copy_cfg_config_is_read_leaf_by_leaf(tmp_path, tiny_model, cli):
    """The tutorial camps' alpaca_enzh config: two datasets in a ConcatDataset, each made local with
    `set --data NAME=PATH`; a row the Chinese mapper can't read is reported against its own leaf."""
    xtuner = shutil.which("xtuner", path=str(Path(sys.executable).parent))
    subprocess.run([xtuner, "copy-cfg", "internlm_chat_7b_qlora_alpaca_enzh_e3", str(tmp_path)], check=True,
                   capture_output=True, cwd=tmp_path)
    copied = next(tmp_path.glob("internlm_chat_7b_qlora_alpaca_enzh_e3*.py"))
    en = write_jsonl(tmp_path / "en.jsonl", [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(50)])
    zh_rows = [{"instruction_zh": f"问{i}", "input_zh": "", "output_zh": f"答{i}"} for i in range(30)]
    zh_rows[4] = {"instruction": "english field names", "input": "", "output": "x"}  # line 5
    zh = write_jsonl(tmp_path / "zh.jsonl", zh_rows)
    cli("set", copied, "--model", tiny_model, "--data", f"alpaca_en_path={en}", "--in-place", check_rc=0)
    cli("set", copied, "--data", f"alpaca_zh_path={zh}", "--in-place", check_rc=0)
    rc, (report,) = validate(cli, copied)
    leaves = {leaf["key"]: leaf for leaf in report["stats"]["datasets"]}
    assert leaves["train_dataloader.dataset.datasets.0"]["usable_rows"] == 50
    assert leaves["train_dataloader.dataset.datasets.1"]["rows"] == 30
    # datasets gives line 5 output_zh=None (the file's columns); alpaca_zh_map_fn maps it, and xtuner's
    # template_map_fn then adds the template's suffix to None: TypeError, in the Chinese leaf only.
    (bad,) = [f for f in report["findings"] if f["severity"] == "error"]
    assert rc == 1 and bad["code"] == "T002" and bad["key"].startswith("train_dataloader.dataset.datasets.1.")
    assert "NoneType" in bad["message"]
    # the proof: xtuner's own functions on the row as datasets hands it over
    from xtuner.dataset.map_fns import alpaca_zh_map_fn, template_map_fn_factory
    from xtuner.utils import PROMPT_TEMPLATE

    row = {"instruction_zh": None, "input_zh": None, "output_zh": None, **zh_rows[4]}
    with pytest.raises(TypeError, match="NoneType"):
        template_map_fn_factory(PROMPT_TEMPLATE.internlm_chat)(alpaca_zh_map_fn(row))


def test_readme_lists_every_finding_code():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [code for code in CODES if f"| {code} |" not in readme]
    assert not missing


def test_gen_caps_max_length_at_the_model_positions_and_passes_its_own_validate(tmp_path, cli):
    model = build_tiny_model(tmp_path / "short-chat", max_position_embeddings=512, weights=False)
    write_jsonl(tmp_path / "train.jsonl", medqa_rows(40))
    made = cli("gen", "medqa", "--model", model, "--data", tmp_path / "train.jsonl", "-o", tmp_path / "cfg.py",
               "--set", "pack_to_max_length=False", check_rc=0)
    assert "max_length 2048 lowered to 512" in made.stdout + made.stderr
    assert "\nmax_length = 512" in (tmp_path / "cfg.py").read_text()
    rc, (report,) = validate(cli, tmp_path / "cfg.py")
    assert rc == 0 and "M005" not in {f["code"] for f in report["findings"]}, report["findings"]


def test_attribute_chains_of_imports_are_resolved(tmp_path, cli):
    """`torch.float61` is an AttributeError when xtuner builds the model; `torch.float16` is fine."""
    for dtype, expected in (("float61", {"L002"}), ("float16", set())):
        path = tmp_path / f"{dtype}.py"
        path.write_text(f"import torch\n\nmodel = dict(llm=dict(torch_dtype=torch.{dtype}))\n")
        rc, (report,) = validate(cli, path, "--level", "load")
        found = {f["code"] for f in report["findings"]} & {"L002"}
        assert found == expected, report["findings"]
        if expected:
            (finding,) = [f for f in report["findings"] if f["code"] == "L002"]
            assert finding["key"] == "model.llm.torch_dtype" and finding["line"] == 3 and "float61" in finding["message"]


CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' + '\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA2 = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
          "{% else %}{{ ' ' + m['content'] + ' ' + eos_token }}{% endif %}{% endfor %}")


def _with_chat_template(tiny_model, folder, template):
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("template", [CHATML, LLAMA2], ids=["chatml", "llama2"])
def test_model_join_equals_what_transformers_renders(template, tmp_path, tiny_model):
    """The chat format read from tokenizer_config.json, against transformers' own apply_chat_template."""
    from transformers import AutoTokenizer

    from xtuner_recipes.chat_format import REPLY, USER, model_join

    folder = _with_chat_template(tiny_model, tmp_path / "m-chat", template)
    text = AutoTokenizer.from_pretrained(folder).apply_chat_template(
        [{"role": "user", "content": USER}, {"role": "assistant", "content": REPLY}], tokenize=False)
    assert model_join(str(folder)) == "".join(text.split(USER)[1].split(REPLY)[0].split())


def test_the_models_own_chat_template_decides_gen_and_validate(tmp_path, tiny_model, cli):
    model = _with_chat_template(tiny_model, tmp_path / "chatml-chat", CHATML)  # a llama model_type, ChatML format
    write_jsonl(tmp_path / "train.jsonl", medqa_rows(40))
    made = cli("gen", "medqa", "--model", model, "--data", tmp_path / "train.jsonl", "-o", tmp_path / "cfg.py",
               "--set", "pack_to_max_length=False", check_rc=0)
    assert "chat template" in made.stdout
    text = (tmp_path / "cfg.py").read_text()
    chosen = text.split("prompt_template = PROMPT_TEMPLATE.")[1].split()[0]
    assert chosen in ("internlm2_chat", "qwen_chat", "minicpm3")
    rc, (report,) = validate(cli, tmp_path / "cfg.py")
    codes = {f["code"] for f in report["findings"]}
    assert rc == 0 and not codes & {"M006", "M008"}, report["findings"]
    (tmp_path / "cfg.py").write_text(text.replace(f"PROMPT_TEMPLATE.{chosen}", "PROMPT_TEMPLATE.llama2_chat"))
    rc, (report,) = validate(cli, tmp_path / "cfg.py")
    (m008,) = [f for f in report["findings"] if f["code"] == "M008"]
    assert rc == 1 and m008["severity"] == "error" and "internlm2_chat" in m008["hint"]


@pytest.fixture(scope="session")
def model_families(tokenizer_folders) -> dict:
    return {"llama": tokenizer_folders["llama"], "qwen2": tokenizer_folders["qwen"]}


@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("recipe", ["medqa", "oasst1", "msagent"])
def test_gen_for_every_recipe_and_model_family_passes_its_own_validate(recipe, family, model_families, tmp_path, cli):
    data = tmp_path / "train.jsonl"
    if recipe == "medqa":
        write_jsonl(data, medqa_rows(40))
    else:
        name = {"oasst1": "oasst1.jsonl", "msagent": "msagent.jsonl"}[recipe]
        data.write_text((FIXTURES / "data" / name).read_text() * 40)
    cli("gen", recipe, "--model", model_families[family], "--data", data, "-o", tmp_path / "cfg.py",
        "--set", "pack_to_max_length=False", check_rc=0)
    rc, (report,) = validate(cli, tmp_path / "cfg.py")
    assert rc == 0 and report["ok"], [f for f in report["findings"] if f["severity"] == "error"]
    assert report["stats"]["usable_rows"] == report["stats"]["rows"] > 0 and "tokens_max" in report["stats"]


def test_machine_findings_follow_what_is_installed_here():
    """E002-E004 against this machine's own imports (each check can go either way on another machine)."""
    import importlib.util

    from xtuner_recipes.validate.machine.environment import check_environment

    codes = {f.code: f for f in check_environment(quantized=True, uses_lora=True, strict=False)}
    probe = subprocess.run([sys.executable, "-c", "import bitsandbytes"], capture_output=True)
    assert ("E002" in codes) == (probe.returncode != 0)
    deepspeed = importlib.util.find_spec("deepspeed") is not None
    assert ("E003" in codes) == (not deepspeed)
    assert "E004" not in codes  # mpi4py: multi-node runs only (doctor --nodes 2)
    assert all(f.severity == "warning" for f in codes.values())
    strict = check_environment(quantized=True, uses_lora=True, strict=True)
    assert {f.code for f in strict} == set(codes) and all(f.severity == "error" for f in strict)
    assert "E002" not in {f.code for f in check_environment(quantized=False, uses_lora=False, strict=False)}


def test_a_spreadsheet_as_data_is_one_finding_with_the_prepare_command(tmp_path, tiny_model, cli):
    """The tutorial's MedQA2019.xlsx set as data_path by hand: one D002 naming prepare, not a row error per row
    "not UTF-8" (#30); datasets' json loader fails on it."""
    from datasets import load_dataset

    from test_prepare import drugqa_xlsx

    sheet = drugqa_xlsx(tmp_path / "MedQA2019.xlsx")
    cli("gen", "medqa", "--model", tiny_model, "-o", tmp_path / "c.py", check_rc=0)
    config = tmp_path / "c.py"
    text = config.read_text()
    start = text.index("\ndata_path = ") + 1
    config.write_text(text[:start] + f"data_path = {str(sheet)!r}" + text[text.index("\n", start):])
    rc, (report,) = validate(cli, config)
    d002 = [f for f in report["findings"] if f["code"] == "D002"]
    assert rc == 1 and len(d002) == 1 and "is a spreadsheet" in d002[0]["message"]
    assert "xtuner-recipes prepare medqa" in d002[0]["hint"] and "UTF-8" not in json.dumps(report["findings"])
    with pytest.raises(Exception):  # noqa: B017 - whatever datasets raises, it does not load
        load_dataset("json", data_files=str(sheet), cache_dir=str(tmp_path / "hf"))


def test_a_missing_data_file_is_said_at_the_variable_the_user_edits(cli, tmp_path, tiny_model):
    """D001 at `data_path = ...` (line and key), the setting that reads it in the message, `set --data` as the fix;
    a path written inline (a dumped config) stays at the dataset's own setting."""
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"question": "Q", "options": {"A": "a", "B": "b"}, "answer": "a",
                                "answer_idx": "A"}) + "\n")
    config = tmp_path / "cfg.py"
    cli("gen", "medqa", "--model", tiny_model, "--data", data, "-o", config, check_rc=0)
    data.unlink()
    report = json.loads(cli("validate", config, "--format", "json").stdout)[0]
    (found,) = [f for f in report["findings"] if f["code"] == "D001"]
    source = config.read_text().splitlines()
    assert found["key"] == "data_path" and source[found["line"] - 1].startswith("data_path = ")
    assert "(read by train_dataloader.dataset.dataset)" in found["message"] and "--data PATH" in found["hint"]
    inline = config.read_text().replace("data_files=dict(train=data_path)", f"data_files=dict(train='{data}')")
    assert inline != config.read_text()
    config.write_text(inline)
    report = json.loads(cli("validate", config, "--format", "json").stdout)[0]
    (found,) = [f for f in report["findings"] if f["code"] == "D001"]
    assert found["key"] == "train_dataloader.dataset.dataset" and "read by" not in found["message"]


def test_a_field_of_two_types_is_named_with_its_rows(cli, tmp_path, tiny_model):
    """D011: the field, and where it is text and where a number, for any datasets version installed."""
    rows = [{"question": "Q", "options": {"A": "a", "B": "b"}, "answer": "a", "answer_idx": "A", "id": n}
            for n in range(3)] + [{"question": "Q", "options": {"A": "a"}, "answer": "a", "answer_idx": "A",
                                   "id": "four"}]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = tmp_path / "cfg.py"
    cli("gen", "medqa", "--model", tiny_model, "--data", data, "-o", config, check_rc=0)
    report = json.loads(cli("validate", config, "--format", "json").stdout)[0]
    (found,) = [f for f in report["findings"] if f["code"] == "D011"]
    assert found["severity"] == "error" and "field 'id'" in found["message"]
    assert f"({data}:4)" in found["message"] and f"{data}:1, {data}:2, {data}:3" in found["message"]
