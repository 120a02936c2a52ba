"""The preflight's stand-in for ``cfg.pretty_text`` fails exactly where mmengine's own (with yapf) fails."""

import math

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from xtuner_recipes.compat.mmengine import settings as loaded_settings
from xtuner_recipes.validate.load.preflight import printable


class Helper:  # a class as a config value: mmengine prints it as <class ...>
    pass


def helper_function(x):  # functions too, unless xtuner's register_function turned them into names
    return x


LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.just(Helper), st.just(helper_function), st.just(math.pi), st.builds(object), st.just(Ellipsis),
    st.frozensets(st.integers(), max_size=3), st.binary(max_size=5), st.complex_numbers(max_magnitude=10),
)
KEYS = st.one_of(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), st.integers(0, 5), st.text(max_size=6))
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner), st.dictionaries(KEYS, inner, max_size=3)), max_leaves=8)
CONFIGS = st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), VALUES, min_size=1, max_size=4)


def _outcome(call) -> bool:
    try:
        call()
    except SyntaxError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(CONFIGS)
def test_printable_fails_exactly_where_pretty_text_fails(values):
    from mmengine.config import Config

    theirs = _outcome(lambda: Config(values).pretty_text)
    ours = _outcome(lambda: printable(Config(values)))
    assert ours == theirs


def test_a_class_fails_and_literals_pass():
    from mmengine.config import Config

    assert not _outcome(lambda: printable(Config({"a": {"b": Helper}})))
    assert _outcome(lambda: printable(Config({"a": [1, "x", None, {"c": 2.5}]})))


@settings(max_examples=200, deadline=None)
@given(varlen=st.booleans(), batch_size=st.integers(1, 3), max_length=st.sampled_from([None, 1024, 1023]),
       sequence_parallel=st.sampled_from([None, 1, 2, 4]), sp_size=st.sampled_from([None, 1, 2]),
       attn=st.sampled_from([None, "eager", "flash_attention_2"]), deepspeed=st.sampled_from([None, "deepspeed_zero2"]))
def test_xtuners_train_script_functions_compiled_from_source_equal_the_imported_ones(
        varlen, batch_size, max_length, sequence_parallel, sp_size, attn, deepspeed):
    """`validate` compiles register_function/check_cfg from xtuner's script instead of importing it (4 s):
    the same outcome as the imported script's own functions on the same config."""
    import argparse

    from mmengine.config import Config
    from xtuner.tools import train

    from xtuner_recipes.validate.load.preflight import train_script_functions

    values = {"use_varlen_attn": varlen, "model": {"llm": {} if attn is None else {"attn_implementation": attn}},
              "train_dataloader": {"batch_size": batch_size,
                                   "dataset": {} if max_length is None else {"max_length": max_length}},
              "helper": helper_function}
    if sequence_parallel is not None:
        values["sequence_parallel"] = sequence_parallel
    if sp_size is not None:
        values["sequence_parallel_size"] = sp_size
    outcomes = []
    for register, check in (train_script_functions(), (train.register_function, train.check_cfg)):
        cfg = Config(values)
        try:
            register(loaded_settings(cfg))
            check(cfg, argparse.Namespace(deepspeed=deepspeed))
            outcomes.append(("ok", loaded_settings(cfg)["helper"].startswith("<function helper_function")))
        except Exception as error:  # noqa: BLE001 - comparing failures is the point
            outcomes.append((type(error).__name__, str(error)))
    assert outcomes[0] == outcomes[1]


def test_a_launch_without_deepspeed_reaches_xtuners_check_as_none(tiny_model, tmp_path, monkeypatch, capsys):
    """`--deepspeed none` (validate, plan) or a `train` without --deepspeed: xtuner's check_cfg is given
    deepspeed=None, and refuses sequence parallel without DeepSpeed, as `xtuner train` would."""
    import argparse
    import json

    from mmengine.config import Config
    from xtuner.tools import train

    from conftest import FIXTURES
    from xtuner_recipes.cli import main
    from xtuner_recipes.validate.inputs import Launch
    from xtuner_recipes.validate.load import preflight
    from xtuner_recipes.validate.runner import validate_config

    config = tmp_path / "sp.py"
    assert main(["gen", "oasst1", "--model", str(tiny_model), "--data", str(FIXTURES / "data" / "oasst1.jsonl"),
                 "-o", str(config)]) == 0
    config.write_text(config.read_text() + "\nsequence_parallel_size = 2\n")
    # A machine with flash-attn 2, where sequence parallel gets past check_cfg's first rule.
    monkeypatch.setattr(preflight._FlashAttention2, "__bool__", lambda self: True)
    monkeypatch.setattr(train, "SUPPORT_FLASH2", True)
    capsys.readouterr()

    def l003(report):
        return [f.message for f in report.findings if f.code == "L003"]

    without = l003(validate_config(str(config), launch=Launch.from_preset("none")))
    assert len(without) == 1 and "Sequence parallel training without DeepSpeed" in without[0]
    assert l003(validate_config(str(config), launch=Launch.from_preset("deepspeed_zero2"))) == []
    assert main(["validate", str(config), "--deepspeed", "none", "--format", "json"]) == 1
    codes = [f["code"] for f in json.loads(capsys.readouterr().out)[0]["findings"]]
    assert "L003" in codes
    # The proof: xtuner's own imported check_cfg fails on this config with deepspeed=None, and only then.
    with pytest.raises(AssertionError, match="without DeepSpeed"):
        train.check_cfg(Config.fromfile(str(config)), argparse.Namespace(deepspeed=None))
    train.check_cfg(Config.fromfile(str(config)), argparse.Namespace(deepspeed="deepspeed_zero2"))
