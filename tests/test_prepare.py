"""``prepare``: the tutorial's xlsx, original MedQA, MS-Agent (with a crafted row) and OASST1."""

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from conftest import FIXTURES

HEADER = ["Question", "Focus (Drug)", "Question Type", "Answer", "Section Title", "URL"]


def drugqa_xlsx(path: Path, count=690, *, order_seed=None, duplicates: int = 0) -> Path:
    """The tutorial's Medication QA sheet: ``count`` rows, the last ``duplicates`` of them repeating earlier ones
    (the real MedQA2019.xlsx has 690 rows, one a duplicate: 689 written)."""
    rows = [[f"How should I take drug {i}?", f"drug {i}", "usage", f"Take drug {i} with water, {i % 3 + 1} times a day.",
             "Usage", f"https://example.org/{i}"] for i in range(count - duplicates)]
    rows += [list(rows[i * 7 % len(rows)]) for i in range(duplicates)]
    if order_seed is not None:
        random.Random(order_seed).shuffle(rows)
    book = Workbook()
    sheet = book.active
    sheet.title = "DrugQA"
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def prepare_json(cli, *args):
    result = cli("prepare", *args, "--json")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_tutorial_xlsx_splits_483_207_the_same_bytes_every_run(tmp_path, cli):
    xlsx = drugqa_xlsx(tmp_path / "MedQA2019.xlsx")
    for out in ("a", "b"):
        cli("prepare", "medqa", xlsx, "-o", tmp_path / out, "--test-ratio", "0.3", "--seed", "1", check_rc=0)
    for name in ("train.jsonl", "test.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    train, test = lines(tmp_path / "a" / "train.jsonl"), lines(tmp_path / "a" / "test.jsonl")
    assert (len(train), len(test)) == (483, 207)
    questions = [row["conversation"][0]["input"] for row in train + test]
    assert sorted(questions) == sorted(f"How should I take drug {i}?" for i in range(690))  # every question once
    assert all(row["conversation"][0]["output"].startswith("Take drug") for row in train + test)
    assert len({row["id"] for row in train + test}) == 690
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["written"] == {"train": 483, "test": 207} and manifest["seed"] == 1
    assert manifest["inputs"][0]["rows"] == 690 and len(manifest["inputs"][0]["sha256"]) == 64


def test_split_does_not_depend_on_row_order(tmp_path, cli):
    one = drugqa_xlsx(tmp_path / "one.xlsx")
    shuffled = drugqa_xlsx(tmp_path / "shuffled.xlsx", order_seed=7)
    for name, xlsx in (("one", one), ("shuffled", shuffled)):
        cli("prepare", "medqa", xlsx, "-o", tmp_path / name, "--test-ratio", "0.3", "--seed", "1", check_rc=0)
    ids = {name: {row["id"] for row in lines(tmp_path / name / "test.jsonl")} for name in ("one", "shuffled")}
    assert ids["one"] == ids["shuffled"]
    cli("prepare", "medqa", one, "-o", tmp_path / "seed2", "--test-ratio", "0.3", "--seed", "2", check_rc=0)
    assert {row["id"] for row in lines(tmp_path / "seed2" / "test.jsonl")} != ids["one"]


def test_original_medqa_keeps_every_option_and_answers_letter_and_text(tmp_path, cli):
    inputs = [FIXTURES / "data" / f"medqa_{name}.jsonl" for name in ("us", "mainland", "taiwan")]
    rc, result = prepare_json(cli, "medqa", *inputs, "-o", tmp_path / "out")
    assert rc == 0 and result["written"] == {"train": result["rows_in"]}
    raw = [json.loads(line) for path in inputs for line in path.read_text(encoding="utf-8").splitlines()]
    out = lines(tmp_path / "out" / "train.jsonl")
    for record, row in zip(raw, out):
        turn = row["conversation"][0]
        assert record["question"] in turn["input"]
        assert all(f"{letter}. {text}" in turn["input"] for letter, text in record["options"].items())
        assert turn["output"] == f"{record['answer_idx']}. {record['answer']}"


def test_tutorial_json_array_under_a_jsonl_name_passes_through(tmp_path, cli):
    rows = [{"conversation": [{"system": "doctor", "input": f"q{i}", "output": f"a{i}"}]} for i in range(5)]
    path = tmp_path / "MedQA2019-structured.jsonl"
    path.write_text(json.dumps(rows, indent=4, ensure_ascii=False), encoding="utf-8")
    rc, result = prepare_json(cli, "medqa", path, "-o", tmp_path / "out")
    assert rc == 0 and [row["conversation"] for row in lines(tmp_path / "out" / "train.jsonl")] == [
        row["conversation"] for row in rows]


def crafted_msagent(tmp_path: Path) -> tuple[Path, Path, int]:
    marker = tmp_path / "PWNED"
    good = (FIXTURES / "data" / "msagent.jsonl").read_text(encoding="utf-8").splitlines()
    crafted = json.dumps({"id": "evil", "conversations": f"__import__('pathlib').Path({str(marker)!r}).touch()"})
    rows = good[:2] + [crafted] + good[2:]
    path = tmp_path / "msagent.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path, marker, 3


def test_msagent_crafted_row_stops_everything_without_skip_bad(tmp_path, cli):
    path, marker, line = crafted_msagent(tmp_path)
    out = tmp_path / "out"
    result = cli("prepare", "msagent", path, "-o", out)
    assert result.returncode == 1
    assert f"{path}:{line}:" in result.stdout and "nothing written" in result.stdout
    assert not marker.exists()  # parsed, never run
    assert not out.exists()  # no output folder,
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # and no temporary left beside it


def test_msagent_skip_bad_writes_every_other_row(tmp_path, cli):
    path, marker, line = crafted_msagent(tmp_path)
    rc, result = prepare_json(cli, "msagent", path, "-o", tmp_path / "out", "--skip-bad")
    assert rc == 0 and not marker.exists()
    assert result["bad"] == [{"where": f"{path}:{line}", "reason": result["bad"][0]["reason"]}]
    good = len((FIXTURES / "data" / "msagent.jsonl").read_text(encoding="utf-8").splitlines())
    written = lines(tmp_path / "out" / "train.jsonl")
    assert len(written) == good and all("Final Answer" in str(row["conversation"]) for row in written)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["bad_rows"] == 1


def test_every_bad_row_is_reported_with_its_line_and_reason(tmp_path, cli):
    path = tmp_path / "oasst1.jsonl"
    path.write_bytes(b'{"text": "### Human: hi### Assistant: hello"}\n'
                     b'{"text": "### Human: broken\n'
                     b'[1, 2]\n'
                     b'{"text": "caf\xe9 ### Human: a### Assistant: b"}\n'
                     b'{"title": "no text"}\n'
                     b'{"text": "### Human: only a question"}\n')
    rc, result = prepare_json(cli, "oasst1", path, "-o", tmp_path / "out")
    assert rc == 1 and result["rows_in"] == 6 and result["outputs"] == []
    reasons = {item["where"]: item["reason"] for item in result["bad"]}
    assert set(reasons) == {f"{path}:{n}" for n in (2, 3, 4, 5, 6)}
    assert "bad JSON" in reasons[f"{path}:2"] and "not a JSON object" in reasons[f"{path}:3"]
    assert "not UTF-8" in reasons[f"{path}:4"] and "'text'" in reasons[f"{path}:5"]
    assert "Assistant" in reasons[f"{path}:6"]


def test_oasst1_turns_and_no_overwrite_without_force(tmp_path, cli):
    out = tmp_path / "out"
    rc, result = prepare_json(cli, "oasst1", FIXTURES / "data" / "oasst1.jsonl", "-o", out)
    first = lines(out / "train.jsonl")[0]["conversation"]
    assert first == [{"input": "Can you explain what a transformer is?",
                      "output": "A transformer is a neural network built on attention."}]
    before = (out / "train.jsonl").read_bytes()
    again = cli("prepare", "oasst1", FIXTURES / "data" / "oasst1.jsonl", "-o", out)
    assert again.returncode == 2 and "already exists" in again.stderr and (out / "train.jsonl").read_bytes() == before
    cli("prepare", "oasst1", FIXTURES / "data" / "oasst1.jsonl", "-o", out, "--force", check_rc=0)


@pytest.mark.parametrize("task", ["medqa", "msagent", "oasst1"])
def test_gen_takes_prepared_train_jsonl_as_data(task, tmp_path, cli):
    source = {"medqa": drugqa_xlsx(tmp_path / "d.xlsx", 30), "msagent": FIXTURES / "data" / "msagent.jsonl",
              "oasst1": FIXTURES / "data" / "oasst1.jsonl"}[task]
    cli("prepare", task, source, "-o", tmp_path / "data", check_rc=0)
    config = tmp_path / "cfg.py"
    cli("gen", task, "--model", "internlm/internlm-chat-7b", "--data", tmp_path / "data" / "train.jsonl", "-o", config,
        check_rc=0)
    from conftest import load_config
    from xtuner.registry import BUILDER

    cfg = load_config(config)
    dataset = BUILDER.build(cfg.train_dataset.dataset)["train"]
    function = cfg.train_dataset.dataset_map_fn
    mapped = [function(row) for row in dataset]
    assert len(mapped) == len(lines(tmp_path / "data" / "train.jsonl"))
    assert all(item["conversation"] for item in mapped)


def test_prepare_refuses_an_output_folder_that_holds_an_input(cli, tmp_path):
    raw = tmp_path / "data" / "train.jsonl"
    raw.parent.mkdir()
    raw.write_text('{"text": "### Human: hi### Assistant: hello"}\n')
    before = raw.read_bytes()
    result = cli("prepare", "oasst1", raw, "-o", tmp_path / "data", "--force")
    assert result.returncode == 2 and "inside the output folder" in result.stderr
    assert raw.read_bytes() == before


def test_a_rerun_without_a_test_split_removes_the_old_one(cli, tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(f'{{"text": "### Human: q{i}### Assistant: a{i}"}}\n' for i in range(20)))
    cli("prepare", "oasst1", raw, "-o", tmp_path / "out", "--test-ratio", "0.3", check_rc=0)
    assert (tmp_path / "out" / "test.jsonl").is_file()
    cli("prepare", "oasst1", raw, "-o", tmp_path / "out", "--force", check_rc=0)
    assert not (tmp_path / "out" / "test.jsonl").exists()  # its rows are all in train.jsonl now
    assert len((tmp_path / "out" / "train.jsonl").read_text().splitlines()) == 20
    assert (tmp_path / "out" / "manifest.json").is_file()


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.integers(0, 2**64 - 1) | st.sampled_from([0, 1, 2**64 - 1]), max_size=60),
       ratio=st.floats(0, 0.99))
def test_the_compact_bookkeeping_equals_a_set_and_a_sort(values, ratio):
    """Duplicates by sorted 64-bit ids and the cutoff by partition, against the plain set and sorted list."""
    from array import array

    from xtuner_recipes.prepare.split import first_occurrences, test_cutoff

    seen, expected = set(), []
    for value in values:
        expected.append(int(value not in seen))
        seen.add(value)
    assert list(first_occurrences(array("Q", values))) == expected
    count = round(len(values) * ratio)
    assert test_cutoff(array("Q", values), ratio) == (sorted(values)[count - 1] if count > 0 else -1)


def test_gen_fits_the_prompt_to_the_data_prepare_wrote(tmp_path, cli):
    """The tutorial's MedQA2019.xlsx is free-text medication Q&A: gen writes its system prompt and asks
    held-out test.jsonl questions; MedQA's exam files keep the multiple-choice prompt."""
    from conftest import load_config
    from xtuner_recipes.data_profile import DRUGQA_SYSTEM
    from xtuner_recipes.map_fns.medqa import SYSTEM_PROMPTS

    cli("prepare", "medqa", drugqa_xlsx(tmp_path / "MedQA2019.xlsx"), "-o", "drugqa", "--test-ratio", "0.3",
        check_rc=0)
    manifest = json.loads((tmp_path / "drugqa" / "manifest.json").read_text())
    assert manifest["data"] == {"kind": "medication-qa", "language": "en", "system": DRUGQA_SYSTEM}
    result = cli("gen", "medqa", "--model", "./internlm-chat-7b", "--data", "drugqa/train.jsonl", "-o", "drug.py",
                 check_rc=0)
    assert "medication Q&A" in result.stderr and "held-out test.jsonl" in result.stderr
    config = load_config(tmp_path / "drug.py")
    held_out = [row["conversation"][0]["input"] for row in lines(tmp_path / "drugqa" / "test.jsonl")[:3]]
    assert config.SYSTEM == DRUGQA_SYSTEM and config.evaluation_inputs == held_out
    trained = {row["conversation"][0]["input"] for row in lines(tmp_path / "drugqa" / "train.jsonl")}
    assert not trained & set(held_out)  # questions the model never sees in training

    cli("gen", "medqa", "--model", "./internlm-chat-7b", "--data", FIXTURES / "data" / "medqa_us.jsonl",
        "-o", "exam.py", check_rc=0)
    assert load_config(tmp_path / "exam.py").SYSTEM == SYSTEM_PROMPTS["en"]
    cli("gen", "medqa", "--model", "./internlm-chat-7b", "--data", FIXTURES / "data" / "medqa_mainland.jsonl",
        "-o", "zh.py", check_rc=0)
    assert load_config(tmp_path / "zh.py").SYSTEM == SYSTEM_PROMPTS["zh-hans"]
    mine = cli("gen", "medqa", "--model", "./internlm-chat-7b", "--data", "drugqa/train.jsonl", "-o", "mine.py",
               "--set", "SYSTEM='my own'", check_rc=0)
    assert load_config(tmp_path / "mine.py").SYSTEM == "my own" and mine.returncode == 0  # the user's word wins
    # and gen no longer says the data chose what the user set; the held-out questions it did choose, it says
    assert "medication Q&A" not in mine.stderr and "held-out test.jsonl" in mine.stderr


TUTORIAL = FIXTURES / "tutorial" / "MedQA2019-structured-train.jsonl"  # the tutorial's form: a JSON array in .jsonl


@pytest.mark.parametrize("form", ["raw", "prepared", "folder"])
def test_gen_takes_the_system_prompt_the_tutorials_structured_rows_carry(tmp_path, cli, form):
    """The tutorial's MedQA2019-structured files: every row carries the tutorial's doctor-professor system
    prompt. gen writes it as SYSTEM (not the multiple-choice exam prompt), and asks questions of this data, not
    an exam question: the raw file, prepare's output, and prepare's folder given as --data."""
    from conftest import load_config
    from xtuner_recipes.map_fns.medqa import SYSTEM_PROMPTS

    system = json.loads(TUTORIAL.read_text())[0]["conversation"][0]["system"]
    if form == "raw":
        data = TUTORIAL
    else:
        cli("prepare", "medqa", TUTORIAL, "-o", "medqa", "--test-ratio", "0.3", check_rc=0)
        data = "medqa/train.jsonl" if form == "prepared" else "medqa"
    result = cli("gen", "medqa", "--model", "./internlm-chat-7b", "--data", data, "-o", "cfg.py", check_rc=0)
    config = load_config(tmp_path / "cfg.py")
    assert config.SYSTEM == system != SYSTEM_PROMPTS["en"]
    asked = set(config.evaluation_inputs)
    all_questions = {row["conversation"][0]["input"] for row in json.loads(TUTORIAL.read_text())}
    assert asked and asked <= all_questions  # questions of this data
    if form != "raw":  # prepare held some out: those are asked, never trained on
        trained = {row["conversation"][0]["input"] for row in lines(tmp_path / "medqa" / "train.jsonl")}
        assert not asked & trained and "held-out test.jsonl" in result.stderr
    assert "carry their own system prompt" in result.stderr


def test_rows_of_another_task_are_named_with_the_command_that_reads_them(tmp_path, cli):
    """`prepare oasst1 MedQA2019.xlsx`: every row is bad for oasst1 and reads as medqa; prepare says so (#30)."""
    result = cli("prepare", "oasst1", drugqa_xlsx(tmp_path / "MedQA2019.xlsx"), "-o", "out")
    assert result.returncode == 1 and not (tmp_path / "out").exists()
    assert "they read as medqa rows; run `xtuner-recipes prepare medqa" in result.stdout
    assert "--skip-bad" not in result.stdout.splitlines()[-1]
    found = json.loads(cli("prepare", "oasst1", "MedQA2019.xlsx", "-o", "out", "--json").stdout)
    assert found["looks_like"] == "medqa" and found["ok"] is False


def test_a_row_nested_past_pythons_json_parser_is_a_bad_row_with_its_line(cli, tmp_path):
    """A 100,000-deep row: one bad row at file:line, which --skip-bad skips (it aborted the whole run)."""
    good = json.dumps({"question": "Q?", "options": {"A": "a", "B": "b"}, "answer": "a", "answer_idx": "A"})
    data = tmp_path / "deep.jsonl"
    data.write_text(good + "\n" + '{"question": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    refused = cli("prepare", "medqa", data, "-o", tmp_path / "out")
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1 and f"{data}:2: JSON nested deeper than Python's json parser goes" in said
    done = cli("prepare", "medqa", data, "-o", tmp_path / "out", "--skip-bad", check_rc=0)
    assert "1 written" in done.stderr + done.stdout and "1 skipped as bad" in done.stderr + done.stdout
