"""The row reader against the json module: a JSON array is parsed item by item as it is read, with
the same items json.loads gives, whatever falls on a read-ahead boundary."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtuner_recipes import rows

VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                      max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(VALUES, max_size=12), chunk=st.integers(1, 64), indent=st.sampled_from([None, 1, 2]),
       bom=st.booleans())
def test_an_array_streams_to_the_items_json_loads_gives(tmp_path_factory, items, chunk, indent, bom):
    path = tmp_path_factory.mktemp("rows") / "data.json"
    path.write_text(("\ufeff" if bom else "") + json.dumps(items, indent=indent, ensure_ascii=False), encoding="utf-8")
    read = list(rows.read_rows(path, chunk=chunk))
    assert len(read) == len(items)
    for row, item in zip(read, items):
        if isinstance(item, dict):
            assert row.record == item and row.error is None
        else:
            assert row.record is None and "not a JSON object" in row.error


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet='[]{},:"ab1 \n', max_size=40), chunk=st.integers(1, 16))
def test_a_broken_array_ends_in_an_error_row_exactly_when_json_loads_fails(tmp_path_factory, text, chunk):
    text = "[" + text
    path = tmp_path_factory.mktemp("rows") / "data.json"
    path.write_text(text, encoding="utf-8")
    read = list(rows.read_rows(path, chunk=chunk))
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        # a first line that is whole JSON by itself, with more after it, is JSONL: its rows are judged one by one
        assert read and read[-1].error and read[-1].error.startswith(("bad JSON", "not a JSON array",
                                                                       "not a JSON object"))
        return
    assert [row.record for row in read] == [item if isinstance(item, dict) else None for item in items]
    assert all(row.error is None or "not a JSON object" in row.error for row in read)


def test_an_array_file_that_is_not_utf8_is_one_error_row(tmp_path):
    path = tmp_path / "data.json"
    path.write_bytes(b'[{"a": "\xff\xfe"}]')
    read = list(rows.read_rows(path))
    assert len(read) == 1 and "not UTF-8" in read[0].error


@pytest.mark.parametrize("text", ['[{"a":1},]', '[{"a":1} {"b":2}]', '[{"a":1}', '[{"a":1}] x'])
def test_a_bad_array_names_its_line(tmp_path, text):
    path = tmp_path / "data.json"
    path.write_text("\n\n" + text, encoding="utf-8")
    last = list(rows.read_rows(path))[-1]
    assert last.error.startswith("bad JSON") and last.line == 3


def test_jsonl_whose_first_row_is_a_list_is_read_as_jsonl(tmp_path):
    """Not as one JSON array (issue #30): the list row is a bad row of line 1, the objects after it are read."""
    path = tmp_path / "data.jsonl"
    path.write_text('[1, 2]\n{"text": "a"}\n{"text": "b"}\n', encoding="utf-8")
    read = list(rows.read_rows(path))
    assert [(row.line, row.record) for row in read] == [(1, None), (2, {"text": "a"}), (3, {"text": "b"})]
    assert "not a JSON object but list" in read[0].error
    one_line = tmp_path / "one.jsonl"
    one_line.write_text('[{"text": "a"}, {"text": "b"}]\n', encoding="utf-8")  # an array on one line: an array
    assert [row.record for row in rows.read_rows(one_line)] == [{"text": "a"}, {"text": "b"}]
