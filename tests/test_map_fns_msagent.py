import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xtuner.dataset.map_fns import msagent_react_map_fn

from xtuner_recipes.map_fns import MSAgentFormatError, msagent_map_fn

DATA = Path(__file__).parent / "fixtures" / "data"
ROWS = [json.loads(line) for line in (DATA / "msagent.jsonl").read_text(encoding="utf-8").splitlines()]


def as_list(row):
    """The same row with ``conversations`` already a list, so xtuner's mapper doesn't eval it."""
    value = row["conversations"]
    try:
        turns = json.loads(value)
    except ValueError:
        import ast

        turns = ast.literal_eval(value)
    return {**row, "conversations": turns}


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_fixture_rows_match_xtuner(row):
    assert msagent_map_fn(row) == msagent_react_map_fn(as_list(row))


def test_tool_call_and_result_become_react_turns():
    first, second = msagent_map_fn(ROWS[0])["conversation"]
    assert first["input"] == "上海明天天气怎么样？\n"
    assert "modelscope_weather-query" in first["system"] and "输入参数" in first["system"]
    assert first["output"].startswith("Thought:我需要查询天气。\nAction:modelscope_weather-query\nAction Input:{'location': '上海'}")
    assert second == {"system": "Response:{'temperature': '21', 'weather': '晴'}\n", "output": "Final Answer:上海明天晴，21度。\n"}


def test_crafted_row_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    with pytest.raises(MSAgentFormatError, match="neither JSON nor a Python literal"):
        msagent_map_fn({"id": "evil", "conversations": payload})
    assert not marker.exists()


@pytest.mark.parametrize(
    "conversations, message",
    [
        ("not a list", "neither JSON"),
        ([{"from": "user", "value": "hi"}], "at least two turns"),
        ([{"from": "user"}, {"from": "assistant", "value": "x"}], "'from' and 'value'"),
        ([{"from": "user", "value": "q"}, {"from": "assistant", "value": "<|startofthink|>{bad<|endofthink|>"}], "tool-call"),
        ([{"from": "user", "value": "q"}, {"from": "assistant", "value": "<|startofthink|>{\"x\": 1}<|endofthink|>"}], "api_name"),
        ([{"from": "user", "value": "q"}, {"from": "assistant", "value": "a<|startofexec|>b<|startofexec|>c"}], "more than one"),
        ([{"from": "user", "value": "q"}, {"from": "assistant", "value": "a<|startofexec|>{oops<|endofexec|>x"}], "tool-result"),
    ],
)
def test_malformed_rows_raise_naming_the_problem(conversations, message):
    with pytest.raises(MSAgentFormatError, match=message):
        msagent_map_fn({"conversations": conversations})


# Well-formed rows generated from the public format: xtuner's mapper must agree.
texts = st.text(st.characters(blacklist_characters="<>`{}", blacklist_categories=("Cs",)), max_size=12)
tools = st.builds(
    lambda name, description, params: {
        "name": name, "description": description,
        "paths": [{"parameters": [{"name": p, "description": d} for p, d in params]}],
    },
    texts, texts, st.lists(st.tuples(texts, texts), max_size=2),
)
calls = st.builds(lambda api, params: {"api_name": api, "url": "http://x", "parameters": params},
                  texts, st.dictionaries(texts, texts, max_size=2))
results = st.dictionaries(texts, texts | st.integers(), max_size=2)


@st.composite
def assistant_values(draw):
    text = draw(texts)
    if draw(st.booleans()):
        text += "<|startofthink|>```JSON\n" + json.dumps(draw(calls), ensure_ascii=False) + "\n```<|endofthink|>"
        if draw(st.booleans()):
            text += "<|startofexec|>```JSON\n" + json.dumps(draw(results), ensure_ascii=False) + "\n```<|endofexec|>"
            text += draw(texts)
    return text


@st.composite
def dialogues(draw):
    turns = [{"from": "system", "value": draw(texts) + json.dumps(draw(tools), ensure_ascii=False) + draw(texts)}]
    for _ in range(draw(st.integers(1, 3))):
        turns.append({"from": "user", "value": draw(texts)})
        turns.append({"from": "assistant", "value": draw(assistant_values())})
    return turns


@settings(max_examples=200, deadline=None)
@given(dialogues())
def test_equal_to_xtuner_on_well_formed_rows(turns):
    ours = msagent_map_fn({"conversations": json.dumps(turns, ensure_ascii=False)})
    assert ours == msagent_react_map_fn({"conversations": turns})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["from", "value", "x"]) | st.text(max_size=5), children, max_size=4),
    max_leaves=15,
)
markup = st.lists(st.sampled_from(["<|startofthink|>", "<|endofthink|>", "<|startofexec|>", "<|endofexec|>", "```JSON", "{", "}", '"api_name"', "Final Answer:", "x"]), max_size=8).map("".join)
turn_like = st.fixed_dictionaries({"from": st.sampled_from(["system", "user", "assistant", "other"]) | json_values, "value": markup | json_values})


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.fixed_dictionaries({"conversations": json_values | st.lists(turn_like, max_size=4) | st.lists(turn_like, max_size=4).map(json.dumps)})))
def test_any_json_gives_a_conversation_or_the_documented_error(record):
    try:
        result = msagent_map_fn(record)
    except MSAgentFormatError:
        return
    assert isinstance(result["conversation"], list)
    assert all(isinstance(turn["output"], str) for turn in result["conversation"])
