"""Numbers and presets no launch can use are refused at the command line, exit 2, before any work: they
used to be taken without a word (issue #30's hostile run)."""

import json

import pytest


@pytest.mark.parametrize("args, said", [
    (["validate", "c.py", "--sample", "0"], "--sample: expected a whole number of at least 1"),
    (["validate", "c.py", "--gpus", "-4"], "--gpus: expected a whole number of at least 1"),
    (["validate", "c.py", "--gpu-mem", "nan"], "--gpu-mem: expected a number above 0"),
    (["validate", "c.py", "--gpu-mem", "-1"], "--gpu-mem: expected a number above 0"),
    (["validate", "c.py", "--host-mem", "0"], "--host-mem: expected a number above 0"),
    (["validate", "c.py", "--deepspeed", ""], "--deepspeed: expected a DeepSpeed preset"),
    (["train", "--gpu-mem", "inf", "c.py"], "--gpu-mem: expected a number above 0"),
    (["plan", "c.py", "--port", "0"], "--port: expected a port from 1 to 65535"),
    (["plan", "c.py", "--port", "70000"], "--port: expected a port from 1 to 65535"),
    (["plan", "c.py", "--nodes", "2", "--port", "-1"], "--port: expected a port"),
    (["plan", "c.py", "--addr", "10.0.0.1"], "--addr and --port set the rendezvous of a launch over several nodes"),
    (["plan", "c.py", "--port", "29400"], "--addr and --port set the rendezvous"),
    (["doctor", "--nodes", "-3"], "--nodes: expected a whole number of at least 1"),
    (["doctor", "--deepspeed", "deepspeed_zero9"], "xtuner has no preset of that name"),
    (["validate", "c.py", "--deepspeed", "five.json"], "zero_optimization.stage 5: DeepSpeed takes"),
    (["validate", "c.py", "--deepspeed", "list.json"], "holds a JSON list, not an object"),
])
def test_a_value_no_launch_can_use_is_a_usage_error(tmp_path, cli, args, said):
    (tmp_path / "c.py").write_text("lr = 1e-4\n")
    (tmp_path / "five.json").write_text(json.dumps({"zero_optimization": {"stage": 5}}))
    (tmp_path / "list.json").write_text("[1, 2]")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli(*args)
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_report_never_replaces_the_config_or_its_data(tmp_path, tiny_model, cli):
    from conftest import FIXTURES, write_jsonl

    rows = [json.loads(line) for line in (FIXTURES / "data" / "oasst1.jsonl").read_text().splitlines()]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    cli("gen", "oasst1", "--model", tiny_model, "--data", data, "-o", tmp_path / "c.py", check_rc=0)
    config_before, data_before = (tmp_path / "c.py").read_bytes(), data.read_bytes()
    for target in (tmp_path / "c.py", data, "./c.py"):
        result = cli("validate", "c.py", "--report", target, "--force")
        assert result.returncode == 2 and "the report would replace it" in result.stderr, result.stderr
    assert (tmp_path / "c.py").read_bytes() == config_before and data.read_bytes() == data_before


def test_plan_quotes_the_checkpoint_a_crafted_name_would_run(tmp_path, tiny_model, cli):
    import shlex

    crafted = tmp_path / "a;touch pwned.py"
    cli("gen", "oasst1", "--model", tiny_model, "-o", crafted, check_rc=0)
    plan = json.loads(cli("plan", crafted.name, "--json").stdout)
    step = next(s for s in plan["steps"] if s["title"] == "checkpoint")
    assert shlex.split(step["command"]) == [plan["checkpoint"]] and ";touch" in plan["checkpoint"]


@pytest.mark.parametrize("command", [["plan"], ["doctor"], ["validate"], ["smoke"]])
def test_a_fifo_given_as_the_config_is_refused_not_waited_on(tmp_path, command):
    """Reading a FIFO without a writer blocks forever; every command refuses it at once (#30)."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "cfg.py"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "xtuner_recipes", *command, str(fifo)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode in (1, 2) and "not a regular file" in done.stdout + done.stderr, done.stderr[-2000:]


def test_plan_of_a_config_whose_system_is_no_text_is_a_plan_not_an_internal_error(tmp_path, tiny_model, cli):
    config = tmp_path / "c.py"
    cli("gen", "oasst1", "--model", tiny_model, "-o", config, check_rc=0)
    text = config.read_text()
    config.write_text(text[:text.index("\nSYSTEM = ")] + "\nSYSTEM = 5\n" + text[text.index("\nSYSTEM = ") + 1:]
                      .split("\n", 1)[1])
    result = cli("plan", config)
    assert result.returncode == 0 and "internal error" not in result.stderr, result.stderr
    assert "xtuner chat" in result.stdout and "--system" not in result.stdout


def test_unreadable_and_unwritable_paths_are_said_plainly(tmp_path, tiny_model, cli):
    """#30's internal errors on user input: a corrupt xlsx, `smoke --keep` naming a FIFO, a report in a folder
    that is a file. Each gets a plain message, not 'internal error'."""
    import os

    (tmp_path / "MedQA2019.xlsx").write_text("not a zip")
    bad = cli("prepare", "medqa", "MedQA2019.xlsx", "-o", "out")
    assert bad.returncode == 1 and "not a readable xlsx workbook" in bad.stdout and not (tmp_path / "out").exists()
    cli("gen", "oasst1", "--model", tiny_model, "-o", "c.py", check_rc=0)
    os.mkfifo(tmp_path / "kept")
    keep = cli("smoke", "c.py", "--keep", "kept")
    assert keep.returncode == 2 and "it exists and is not a folder" in keep.stderr
    (tmp_path / "a-file").write_text("x")
    report = cli("validate", "c.py", "--level", "static", "--report", tmp_path / "a-file" / "r.html")
    assert report.returncode == 2 and "cannot write" in report.stderr
    for result in (bad, keep, report):
        assert "internal error" not in result.stderr


@pytest.mark.parametrize("source", ["x = " + "-" * 100_000 + "1\n", "x = " + "+".join(["1"] * 200_000) + "\n"],
                         ids=["100k-unary-minus", "200k-term-sum"])
def test_a_config_nested_past_pythons_parser_is_said_plainly(tmp_path, cli, source):
    """Python itself cannot compile these (MemoryError, RecursionError), so neither can mmengine: S001 for
    validate, a plain error for set (whose libcst parser crashed on the first and ran for minutes on the second),
    plan and doctor; never an internal error."""
    import ast

    with pytest.raises((MemoryError, RecursionError)):
        ast.parse(source)
    config = tmp_path / "deep.py"
    config.write_text(source)
    report = json.loads(cli("validate", config, "--level", "static", "--format", "json").stdout)[0]
    assert [f["code"] for f in report["findings"]] == ["S001"] and report["internal_error"] is None
    assert "deeper than Python's parser goes" in report["findings"][0]["message"]
    for args in (["set", config, "x=2", "-o", tmp_path / "out.py"], ["set", config, "--data", "a.jsonl", "-o",
                                                                      tmp_path / "out.py"], ["plan", config]):
        done = cli(*args)
        assert done.returncode == 2 and "deeper than Python's parser goes" in done.stderr, (args, done.stderr)
        assert "internal error" not in done.stderr
    assert not (tmp_path / "out.py").exists()


def test_set_refuses_a_config_past_the_rewriters_size(tmp_path, cli):
    config = tmp_path / "big.py"
    config.write_text("x = 1\nnote = '" + "a" * (1024 ** 2 + 10) + "'\n")
    done = cli("set", config, "x=2", "-o", tmp_path / "out.py")
    assert done.returncode == 2 and "the rewriter takes configs up to 1 MB" in done.stderr
    assert not (tmp_path / "out.py").exists()
