"""Before/after pairs for each kind of edit, and properties over the configs xtuner ships."""

import difflib
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_config
from xtuner_recipes.errors import OverrideError
from xtuner_recipes.rewrite import apply_overrides, parse_override
from xtuner_recipes.rewrite.api import parse_config
from xtuner_recipes.rewrite.locate import bindings


def edit(before, *overrides, data_path=None):
    source = textwrap.dedent(before)
    return apply_overrides(source, [parse_override(o) for o in overrides], data_path=data_path).code


PAIRS = [
    ("top-level value, comment kept", "lr = 2e-4  # fast\n", ["lr=1e-5"], "lr = 1e-5  # fast\n"),
    (
        "nested dict(...) call",
        "model = dict(\n    lora=dict(r=64, lora_alpha=16),  # lora\n)\n",
        ["model.lora.r=16"],
        "model = dict(\n    lora=dict(r=16, lora_alpha=16),  # lora\n)\n",
    ),
    ("dict literal", "cfg = {'a': {'b': 1}}\n", ["cfg.a.b=2"], "cfg = {'a': {'b': 2}}\n"),
    (
        "list item by index",
        "s = [\n    dict(start_factor=1e-5),\n    dict(eta_min=0.0),\n]\n",
        ["s.0.start_factor=1e-4"],
        "s = [\n    dict(start_factor=1e-4),\n    dict(eta_min=0.0),\n]\n",
    ),
    (
        "path through a variable sets the variable",
        "max_length = 2048\nds = dict(max_length=max_length)\nother = max_length\n",
        ["ds.max_length=512"],
        "max_length = 512\nds = dict(max_length=max_length)\nother = max_length\n",
    ),
    (
        "path onto an expression replaces that argument only",
        "w = 0.03\ne = 3\nsched = dict(end=w * e)\n",
        ["sched.end=1"],
        "w = 0.03\ne = 3\nsched = dict(end=1)\n",
    ),
    (
        "remove the last keyword argument of a multi-line call",
        "llm = dict(\n    a=1,\n    q=dict(\n        bits=4,\n    ),\n)\n",
        ["~llm.q"],
        "llm = dict(\n    a=1,\n)\n",
    ),
    ("remove a middle argument", "d = dict(a=1, b=2, c=3)\n", ["~d.b"], "d = dict(a=1, c=3)\n"),
    ("remove the last argument on one line", "d = dict(a=1, b=2)\n", ["~d.b"], "d = dict(a=1)\n"),
    ("remove a list item", "h = [1, 2, 3]\n", ["~h.1"], "h = [1, 3]\n"),
    ("dotted name value", "import torch\ndtype = torch.float16\n", ["dtype=torch.bfloat16"], "import torch\ndtype = torch.bfloat16\n"),
    ("string keeps the file's quotes", 'p = "a"\n', ["p='b'"], 'p = "b"\n'),
    ("tuple value", "betas = (0.9, 0.999)\n", ["betas=(0.8, 0.99)"], "betas = (0.8, 0.99)\n"),
    ("remove one of two statements on a line", "a = 1; b = 2\n", ["~a"], "b = 2\n"),
    ("remove the last of two statements on a line", "a = 1; b = 2\nc = 3\n", ["~b"], "a = 1\nc = 3\n"),
]


@pytest.mark.parametrize("before, overrides, after", [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_before_after(before, overrides, after):
    assert edit(before, *overrides) == after


def test_data_shorthand_switches_hub_loader_to_local_json():
    before = "from datasets import load_dataset\ndata_path = 'org/ds'\nds = dict(type=load_dataset, path=data_path)\n"
    after = "from datasets import load_dataset\ndata_path = './t.jsonl'\nds = dict(type=load_dataset, path='json', data_files=dict(train=data_path))\n"
    assert edit(before, data_path="./t.jsonl") == after


def test_data_shorthand_switches_modelscope_loader_and_adds_imports():
    before = textwrap.dedent("""\
        from modelscope.msdatasets import MsDataset
        from xtuner.dataset import process_ms_dataset
        data_path = 'damo/MSAgent-Bench'
        train = dict(
            type=process_ms_dataset,
            dataset=dict(type=MsDataset.load, dataset_name=data_path),
        )
        """)
    after = edit(before, data_path="./agent.jsonl")
    assert "from datasets import load_dataset\n" in after
    assert "from xtuner.dataset import process_hf_dataset\n" in after
    assert "    type=process_hf_dataset,\n" in after
    assert "dataset=dict(type=load_dataset, path='json', data_files=dict(train=data_path))" in after
    assert "MsDataset" not in after and "process_ms_dataset" not in after  # modelscope need not be installed


def test_data_shorthand_drops_only_the_imports_the_old_loader_used():
    before = textwrap.dedent("""\
        import os
        from modelscope.msdatasets import MsDataset  # the hub loader

        from xtuner.dataset import ConcatDataset, process_ms_dataset
        from unused.before import thing
        data_path = 'damo/MSAgent-Bench'
        train = dict(type=process_ms_dataset, dataset=dict(type=MsDataset.load, dataset_name=data_path))
        other = ConcatDataset
        """)
    after = edit(before, data_path="./agent.jsonl")
    assert after.startswith(textwrap.dedent("""\
        import os

        from xtuner.dataset import ConcatDataset
        from unused.before import thing
        """)), after


def test_hub_data_keeps_the_hub_loader():
    before = "data_path = 'a'\nds = dict(type=load_dataset, path=data_path)\n"
    assert edit(before, data_path="org/other") == "data_path = 'org/other'\nds = dict(type=load_dataset, path=data_path)\n"


@pytest.mark.parametrize(
    "source, override, message",
    [
        ("lr = 1\n", "lrr=2", "did you mean lr"),
        ("model = dict(lora=dict(r=1))\n", "model.lora.rr=2", "did you mean model.lora.r"),
        ("lr = 1\n", "lr='x'", "not of type 'number'"),
        ("batch_size = 1\n", "batch_size=-1", "minimum"),
        ("lr = 1\n", "lr=os.getcwd()", "expected a Python literal"),
        ("x = 1\ny = x\n", "~x", "refer to it"),
    ],
)
def test_errors_before_writing(source, override, message):
    with pytest.raises(OverrideError, match=message):
        apply_overrides(source, [parse_override(override)])


def test_syntax_error_names_the_line():
    with pytest.raises(OverrideError, match=r"cfg.py:2:"):
        apply_overrides("a = 1\nb = (\n", [], filename="cfg.py")


@pytest.mark.parametrize(
    "text, message",
    [("lr", "KEY=VALUE"), ("=1", "dotted path"), ("a..b=1", "dotted path"), ("0.a=1", "start with"), ("lr=", "value"), ("~a=1", "no value")],
)
def test_parse_override_errors_say_what_they_got(text, message):
    with pytest.raises(OverrideError, match=message) as error:
        parse_override(text)
    assert "got" in str(error.value)


# ---- properties over the configs xtuner ships ------------------------------------------------


def _literal_settings(source):
    """Top-level settings with a literal value that is also their final value: candidates for overrides.

    A setting changed again later (``accumulative_counts *= sequence_parallel_size``) loads
    as the computed value, so it can't be checked against the override's literal.
    """
    import ast

    recomputed = {n.target.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)}
    found = {}
    module = parse_config(source)
    for name, binding in bindings(module).items():
        if name in recomputed:
            continue
        text = module.code_for_node(binding.value)
        if name in {"lr", "max_epochs", "batch_size", "accumulative_counts", "max_length", "warmup_ratio", "save_steps"}:
            found[name] = text
    return found


VALUES = {
    "lr": st.floats(1e-7, 1e-2).map(lambda v: f"{v:.3g}"),
    "max_epochs": st.integers(1, 9).map(str),
    "batch_size": st.integers(1, 64).map(str),
    "accumulative_counts": st.integers(1, 64).map(str),
    "max_length": st.integers(16, 8192).map(str),
    "warmup_ratio": st.floats(0, 0.5).map(lambda v: f"{v:.3f}"),
    "save_steps": st.integers(1, 5000).map(str),
}


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_overrides_on_shipped_configs(xtuner_configs, tmp_path_factory, data):
    path = data.draw(st.sampled_from(xtuner_configs))
    source = path.read_text(encoding="utf-8")
    assert apply_overrides(source, []).code == source  # no override is the identity
    candidates = _literal_settings(source)
    if not candidates:
        return
    names = data.draw(st.lists(st.sampled_from(sorted(candidates)), min_size=1, max_size=3, unique=True))
    chosen = {name: data.draw(VALUES[name]) for name in names}
    overrides = [parse_override(f"{k}={v}") for k, v in chosen.items()]
    result = apply_overrides(source, overrides)
    assert apply_overrides(result.code, overrides).code == result.code  # idempotent
    changed = [line for line in difflib.ndiff(source.splitlines(), result.code.splitlines()) if line[:1] in "+-"]
    assert all(any(line[2:].lstrip().startswith(f"{name} =") for name in chosen) for line in changed)
    out = tmp_path_factory.mktemp("cfg") / path.name
    out.write_text(result.code, encoding="utf-8")
    config = load_config(out)
    for name, text in chosen.items():
        assert config[name] == pytest.approx(float(text))


@pytest.mark.parametrize("files", ['[data_path, "other.jsonl"]', 'dict(train=data_path, validation="v.jsonl")'])
def test_data_shorthand_keeps_the_other_files_of_a_local_loader(files):
    before = f"from datasets import load_dataset\ndata_path = 'x.jsonl'\nds = dict(type=load_dataset, path='json', data_files={files})\n"
    after = edit(before, data_path="./new.jsonl")
    assert after == before.replace("'x.jsonl'", "'./new.jsonl'")


INLINE_BEFORE = '''\
tokenizer = dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path='/root/model/internlm-chat-7b')
model = dict(
    type=SupervisedFinetune,
    llm=dict(type=AutoModelForCausalLM.from_pretrained,
             pretrained_model_name_or_path='/root/model/internlm-chat-7b'),  # the LLM, inline
)
'''
INLINE_AFTER = '''\
tokenizer = dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path='./internlm-chat-7b')
model = dict(
    type=SupervisedFinetune,
    llm=dict(type=AutoModelForCausalLM.from_pretrained,
             pretrained_model_name_or_path='./internlm-chat-7b'),  # the LLM, inline
)
'''


def test_model_path_is_edited_inline_wherever_the_same_model_is_loaded():
    from xtuner_recipes.rewrite.model_path import set_model_path

    code, edited, notes = set_model_path(INLINE_BEFORE, "./internlm-chat-7b")
    assert code == INLINE_AFTER and notes == []
    assert edited == ["tokenizer.pretrained_model_name_or_path", "model.llm.pretrained_model_name_or_path"]


def test_model_path_of_a_llava_config_leaves_the_visual_encoder(xtuner_configs):
    from xtuner_recipes.rewrite.model_path import set_model_path

    path = next(p for p in xtuner_configs if "llava" in p.parts and "qlora" in p.name and "finetune" in p.name)
    source = path.read_text(encoding="utf-8")
    code, edited, notes = set_model_path(source, "./my-llm")
    assert edited == ["llm_name_or_path"] and any("visual_encoder" in note for note in notes)
    changed = [(a, b) for a, b in zip(source.splitlines(), code.splitlines()) if a != b]
    assert len(changed) == 1 and changed[0][1] == 'llm_name_or_path = "./my-llm"'


def test_model_path_without_any_consumer_is_refused():
    from xtuner_recipes.errors import OverrideError
    from xtuner_recipes.rewrite.model_path import set_model_path

    with pytest.raises(OverrideError, match="no pretrained_model_name_or_path"):
        set_model_path("lr = 1\n", "./m")


def test_the_schema_holds_through_a_variable():
    """`model = dict(lora=lora)`: `model.lora.r=0` edits `lora`, and model.lora.r's rule still applies."""
    from xtuner_recipes.errors import OverrideError

    source = "lora = dict(type=LoraConfig, r=64)\nmodel = dict(lora=lora)\n"
    with pytest.raises(OverrideError, match="model.lora.r"):
        apply_overrides(source, [parse_override("model.lora.r=0")])
    assert apply_overrides(source, [parse_override("model.lora.r=16")]).code == source.replace("r=64", "r=16")


def test_the_rewriters_walk_reads_every_node_libcsts_own_visitor_visits(xtuner_configs):
    """``locate.nodes`` (the rewriter's read-only walk, in place of libcst's visitors, which rebuild every node they
    visit) reaches the same nodes as a libcst visitor does, on one shipped config in ten (every kind of node they
    write: a libcst visit of all of them takes 15 s); and ``within`` leaves the
    statements it was not asked to change as the very same objects."""
    import libcst as cst

    from xtuner_recipes.rewrite.locate import nodes, within

    class Every(cst.CSTVisitor):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_visit(self, node):
            self.seen.append(id(node))
            return True

    class Rename(cst.CSTTransformer):
        def leave_Name(self, original_node, updated_node):
            return updated_node.with_changes(value=updated_node.value + "_x")

    for path in xtuner_configs[::10]:
        module = cst.parse_module(path.read_text(encoding="utf-8"))
        every = Every()
        module.visit(every)
        assert sorted(map(id, nodes(module))) == sorted(every.seen), path
        last = module.body[-1]
        changed = within(module, last, Rename())
        assert all(new is old for new, old in zip(changed.body[:-1], module.body[:-1]))
        assert cst.Module([]).code_for_node(changed.body[-1]) == cst.Module([]).code_for_node(last.visit(Rename()))
