"""The rows validate maps are the rows the installed datasets library hands xtuner's map function."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xtuner_recipes.rows import read_rows
from xtuner_recipes.validate.data.columns import columns, with_columns

KEYS = st.sampled_from(["text", "input", "output", "system", "answer", "q"])
ROW = st.dictionaries(KEYS, st.text(max_size=8) | st.none(), max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, min_size=1, max_size=8).filter(lambda rows: any(rows)))
def test_rows_with_columns_equal_what_datasets_loads(rows, tmp_path_factory):
    from datasets import load_dataset

    folder = tmp_path_factory.mktemp("columns")
    path = folder / "data.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    loaded = load_dataset("json", data_files=str(path), cache_dir=str(folder / "cache"))["train"]
    keys = columns([str(path)])
    ours = [with_columns(row.record, keys) for row in read_rows(path)]
    assert ours == list(loaded) and keys == loaded.column_names


def test_a_file_of_rows_with_and_without_a_key_fails_in_the_map_function_as_in_xtuner(tmp_path):
    """xtuner's own oasst1_map_fn on the row without `text`: datasets gives it None, and `.strip()` fails."""
    from xtuner_recipes.validate.data.scan import scan
    from xtuner_recipes.xtuner_info import map_function

    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "### Human: hi### Assistant: yo"}) + "\n" + json.dumps({"title": "t"}) + "\n")
    found = scan([str(path)], map_function("oasst1_map_fn"), sample=None)
    (d003,) = [f for f in found.findings if f.code == "D003"]
    assert "AttributeError" in d003.message and "strip" in d003.message  # not the raw row's KeyError
