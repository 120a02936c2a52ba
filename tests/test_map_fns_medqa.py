import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtuner_recipes.map_fns import MedQAFormatError, medqa_map_fn
from xtuner_recipes.map_fns.medqa import SYSTEM_PROMPTS

DATA = Path(__file__).parent / "fixtures" / "data"


def rows(name):
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    "name, language", [("medqa_us.jsonl", "en"), ("medqa_mainland.jsonl", "zh-hans"), ("medqa_taiwan.jsonl", "zh-hant")]
)
def test_every_option_in_input_and_letter_with_answer_in_output(name, language):
    for record in rows(name):
        (turn,) = medqa_map_fn(record)["conversation"]
        assert turn["input"].startswith(record["question"])
        for letter, text in record["options"].items():
            assert f"\n{letter}. {text}" in turn["input"]
        assert turn["output"] == f"{record['answer_idx']}. {record['answer']}"
        assert turn["system"] == SYSTEM_PROMPTS[language]


def test_options_are_listed_in_letter_order():
    record = {"question": "Q", "options": {"B": "b", "A": "a"}, "answer_idx": "A", "answer": "a"}
    assert medqa_map_fn(record)["conversation"][0]["input"] == "Q\n\nA. a\nB. b"


def test_conversation_records_pass_through():
    record = {"conversation": [{"system": "s", "input": "q", "output": "a"}], "id": "x"}
    assert medqa_map_fn(record) == {"conversation": [{"system": "s", "input": "q", "output": "a"}]}


@pytest.mark.parametrize(
    "record, message",
    [
        ({"options": {"A": "a", "B": "b"}, "answer_idx": "A"}, "question"),
        ({"question": "Q", "options": ["a", "b"], "answer_idx": "A"}, "options"),
        ({"question": "Q", "options": {"A": "a", "B": "b"}, "answer_idx": "C"}, "answer_idx"),
        ({"question": "Q", "options": {"A": "a", "B": "b"}, "answer_idx": "A", "answer": "b"}, "not the text"),
        ({"conversation": [{"input": "q"}]}, "output"),
        ({"conversation": []}, "non-empty"),
    ],
)
def test_bad_records_raise_the_documented_error(record, message):
    with pytest.raises(MedQAFormatError, match=message):
        medqa_map_fn(record)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
medqa_like = st.fixed_dictionaries(
    {},
    optional={
        "question": json_values | st.text(min_size=1),
        "options": st.dictionaries(st.sampled_from("ABCDE") | st.text(max_size=2), json_values | st.text(min_size=1)),
        "answer_idx": json_values | st.sampled_from("ABCDE"),
        "answer": json_values,
        "conversation": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, medqa_like))
def test_any_json_gives_a_conversation_or_the_documented_error(record):
    try:
        result = medqa_map_fn(record)
    except MedQAFormatError:
        return
    turns = result["conversation"]
    assert turns and all(isinstance(turn["output"], str) for turn in turns)


def test_four_and_five_option_questions_in_one_file_map_as_xtuner_reads_them(tmp_path):
    """datasets 3.x (xtuner 0.2.0's pin) gives the 4-option row an "E": None (datasets 5 leaves it out);
    either way it maps, to A-D."""
    from datasets import load_dataset

    rows = [{"question": "Q1?", "options": {"A": "a", "B": "b", "C": "c", "D": "d", "E": "e"}, "answer": "e",
             "answer_idx": "E"},
            {"question": "Q2?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer": "b", "answer_idx": "B"}]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    loaded = load_dataset("json", data_files=str(path), cache_dir=str(tmp_path / "cache"))["train"]
    assert loaded[1]["options"].get("E") is None  # what the mapper is given inside xtuner
    mapped = loaded.map(medqa_map_fn, remove_columns=loaded.column_names)
    second = mapped[1]["conversation"][0]
    assert "D. d" in second["input"] and "E." not in second["input"] and second["output"] == "B. b"
    assert mapped[0]["conversation"][0]["output"] == "E. e"
