"""One test per private attribute of mmengine or transformers that ``xtuner_recipes/compat/`` relies on: an
upgrade that removes or changes one fails here, by name."""

import pytest

from xtuner_recipes.compat import mmengine as mm
from xtuner_recipes.compat import transformers as tf

CONFIG = """\
from torch.nn import Linear
from mmengine.optim import LinearLR

lr = 0.5
model = dict(type=Linear, in_features=2)
param_scheduler = [dict(type=LinearLR, start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True)]
"""


@pytest.fixture(scope="session")
def config(tmp_path_factory):
    from mmengine.config import Config

    path = tmp_path_factory.mktemp("compat") / "cfg.py"
    path.write_text(CONFIG)
    return Config.fromfile(str(path))


def test_config_cfg_dict_holds_the_settings_unbuilt(config):
    raw = mm.settings(config)
    assert isinstance(raw, dict) and raw["lr"] == 0.5
    assert mm.is_lazy(dict.get(raw["model"], "type"))  # still lazy: reading it built nothing
    assert mm.raw(config, "param_scheduler.0.end") == 1 and mm.raw(config, "model.nope", "absent") == "absent"


def test_lazy_object_module_and_imported_name(config):
    lazy = dict.get(mm.settings(config)["model"], "type")
    assert mm.lazy_import(lazy) == (["torch.nn"], "Linear")
    assert not mm.is_lazy("torch.nn.Linear") and not mm.is_lazy(None)


def test_config_format_python_code_turns_yapf_off(config, monkeypatch):
    import copy

    import mmengine.config.config

    def refuse(*args, **kwargs):
        raise AssertionError("yapf was asked to format")

    monkeypatch.setattr(mmengine.config.config, "FormatCode", refuse)
    text = mm.unformatted_text(copy.deepcopy(config))
    assert "lr=0.5" in text and "mmengine.optim.LinearLR" in text
    with pytest.raises(Exception, match="yapf was asked|Failed to format"):
        copy.deepcopy(config).pretty_text  # noqa: B018 - the formatted text goes through yapf


def test_runner_build_param_scheduler_with_a_loop_of_our_shape():
    import torch
    from mmengine.optim import LinearLR, OptimWrapper

    optimizer = OptimWrapper(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0))
    built = mm.build_param_scheduler(
        [dict(type=LinearLR, start_factor=0.1, by_epoch=True, begin=0, convert_to_iter_based=True)], optimizer,
        iters_per_epoch=10, max_epochs=3, epoch_loop=True)
    # no `end`: the Runner ends it at the loop's max_epochs, converted to iterations
    assert (built[0].begin, built[0].end, built[0].by_epoch) == (0, 30, False)
    iteration_loop = mm.build_param_scheduler(
        [dict(type=LinearLR, start_factor=0.1, by_epoch=True, begin=0, convert_to_iter_based=True)], optimizer,
        iters_per_epoch=10, max_epochs=3, epoch_loop=False)
    assert iteration_loop[0].end == 10  # an iteration loop reports one epoch


def test_fast_tokenizer_has_a_rust_backend_that_counts_the_same():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=backend)
    rust = tf.rust_backend(fast)
    assert rust is not None and len(rust.encode("a b a", add_special_tokens=False)) == 3
    assert len(fast("a b a", add_special_tokens=False)["input_ids"]) == 3
    assert tf.rust_backend(object()) is None
