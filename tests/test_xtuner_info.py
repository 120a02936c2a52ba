"""What xtuner_info reads from xtuner's source, against xtuner imported: the map functions compiled
without importing `xtuner.dataset`, and the builder defaults."""

import inspect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtuner_recipes import xtuner_info


def imported_map_fns():
    import xtuner.dataset.map_fns.dataset_map_fns as module

    return {name: value for name, value in vars(module).items() if name.endswith("_map_fn") and callable(value)}


def test_every_map_function_of_xtuners_compiles_from_source():
    names = sorted(imported_map_fns())
    assert len(names) >= 15 and "oasst1_map_fn" in names
    assert all(xtuner_info.map_function(name) is not None for name in names), names


TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["### Human: hi### Assistant: yo", "", "a\nb"]))
KEYS = ("instruction", "input", "output", "text", "question", "answer", "prompt", "response", "conversations",
        "messages", "system_prompt", "description", "color", "title", "abstract", "context", "query")


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(imported_map_fns())),
       row=st.dictionaries(st.sampled_from(KEYS), st.one_of(TEXT, st.lists(st.dictionaries(
           st.sampled_from(["from", "value", "role", "content"]), TEXT, max_size=2), max_size=3)), max_size=6))
def test_a_compiled_map_function_does_what_xtuners_does(name, row):
    if name == "msagent_react_map_fn":
        row = {k: v for k, v in row.items() if k != "conversations"}  # it eval()s them: no generated code runs
    ours, theirs = xtuner_info.map_function(name), imported_map_fns()[name]
    outcome = []
    for function in (ours, theirs):
        try:
            outcome.append(("ok", function(dict(row))))
        except Exception as error:  # noqa: BLE001 - both must fail the same way
            outcome.append(("error", type(error).__name__))
    assert outcome[0] == outcome[1]


def test_builder_defaults_are_process_hf_datasets():
    from xtuner.dataset.huggingface import process_hf_dataset

    signature = inspect.signature(process_hf_dataset)
    expected = {name: p.default for name, p in signature.parameters.items() if p.default is not inspect.Parameter.empty}
    assert xtuner_info.builder_defaults() == expected


@pytest.mark.parametrize("module,name,expected", [
    ("xtuner.dataset.map_fns", "oasst1_map_fn", True),  # through `from .dataset_map_fns import *`
    ("xtuner.dataset.map_fns", "oasst1_map_fx", False),
])
def test_star_imports_are_followed_in_the_source(module, name, expected):
    from xtuner_recipes.validate.load.imports import defines

    assert defines(module, name) is expected
