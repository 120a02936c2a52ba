import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtuner_recipes.map_fns import GuanacoFormatError, guanaco_map_fn

DATA = Path(__file__).parent / "fixtures" / "data"
# Turn text without the markers; '#' alone is fine (a Markdown heading inside a reply).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(
    lambda s: "###" not in s and s.strip() == s and not s.endswith("#"))


def test_equal_to_xtuner_on_the_fixture_rows():
    from xtuner.dataset.map_fns import oasst1_map_fn

    for line in (DATA / "oasst1.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert guanaco_map_fn(record) == oasst1_map_fn(record)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=4), st.booleans())
def test_turns_round_trip(pairs, trailing_question):
    text = "".join(f"### Human: {q}### Assistant: {a}" for q, a in pairs)
    if trailing_question:
        text += "### Human: one more?"
    assert guanaco_map_fn({"text": text})["conversation"] == [{"input": q, "output": a} for q, a in pairs]


def test_a_markdown_heading_in_a_reply_survives():
    record = {"text": "### Human: Format it### Assistant: Sure:\n### Steps\n1. go"}
    assert guanaco_map_fn(record)["conversation"][0]["output"] == "Sure:\n### Steps\n1. go"


def test_conversation_records_pass_through_and_bad_ones_say_why():
    turns = [{"input": "q", "output": "a"}]
    assert guanaco_map_fn({"conversation": turns}) == {"conversation": turns}
    with pytest.raises(GuanacoFormatError, match="'text'"):
        guanaco_map_fn({"title": "x"})
    with pytest.raises(GuanacoFormatError, match="Assistant"):
        guanaco_map_fn({"text": "### Human: only a question"})
