"""The tokenizer child process: the same counts as the tokenizer in this process, failures reported."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiny_model import build_tiny_model
from xtuner_recipes.validate.tokens import tokenizer as tokens
from xtuner_recipes.validate.tokens.child import TokenizerProcess

TEXTS = ["", "hello world", "<|User|>:what is 2+2?<eoh>\n", "Zürich · 東京 · 🙂", "a\u0000b", "   "]


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-chat", weights=False)


@pytest.fixture(scope="session")
def child(model):
    process = TokenizerProcess(str(model))
    yield process
    process.close()


def test_child_counts_equal_in_process_counts(model, child):
    tokenizer, reason = tokens.load_tokenizer(str(model))
    assert reason is None
    assert child.error() is None
    assert child.count(TEXTS) == tokens.count_tokens(tokenizer, TEXTS)
    assert child.count(["one two three"] * 3) == [tokens.count_tokens(tokenizer, ["one two three"])[0]] * 3


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=20))
def test_child_counts_any_text_like_in_process(model, child, texts):
    tokenizer, _ = tokens.load_tokenizer(str(model))
    assert child.count(texts) == tokens.count_tokens(tokenizer, texts)


def test_counter_uses_the_child_only_for_its_own_model(model, child, tmp_path):
    counting, reason = tokens.counter(str(model), child)
    assert reason is None and counting.count == child.count and counting.special == child.special
    other = build_tiny_model(tmp_path / "other", weights=False)
    counting, reason = tokens.counter(str(other), child)
    assert reason is None and counting.count != child.count
    assert counting.count(["hello world"]) == child.count(["hello world"]) and counting.special == child.special


def test_a_broken_tokenizer_is_reported_by_the_child_and_again_in_process(model, tmp_path):
    broken = build_tiny_model(tmp_path / "broken", weights=False)
    (broken / "tokenizer.model").write_bytes(b"this is not a sentencepiece model")
    process = TokenizerProcess(str(broken))
    try:
        assert process.error()
        with pytest.raises(RuntimeError):
            process.count(["hello"])
        counting, reason = tokens.counter(str(broken), process)
        assert counting is None and reason
    finally:
        process.close()
    assert process._process.returncode is not None  # closed means ended, no child left behind


def test_close_before_any_answer_ends_the_child(model):
    process = TokenizerProcess(str(model))
    process.close()
    assert process._process.returncode is not None


def test_a_text_the_tokenizer_rejects_is_an_error_and_the_child_goes_on(model, child):
    with pytest.raises(RuntimeError, match="TypeError"):
        child.count(["fine", "\ud800 is half a pair"])  # the Rust tokenizer takes no lone surrogate
    tokenizer, _ = tokens.load_tokenizer(str(model))
    assert child.count(["still here"]) == tokens.count_tokens(tokenizer, ["still here"])  # it answers, rightly


def test_modules_in_the_working_directory_do_not_shadow_the_childs(model, tmp_path, monkeypatch):
    for name in ("json", "transformers", "xtuner_recipes"):
        (tmp_path / f"{name}.py").write_text("raise ImportError('shadowed')\n")
    monkeypatch.chdir(tmp_path)
    process = TokenizerProcess(str(model))
    try:
        assert process.error() is None and process.count(["hello world"])[0] > 0
    finally:
        process.close()


def test_a_child_that_died_is_an_error_not_a_broken_pipe(model):
    process = TokenizerProcess(str(model))
    assert process.error() is None
    process._process.kill()
    process._process.wait()
    with pytest.raises(RuntimeError, match="ended without an answer"):
        process.count(["hello"] * 10000)
    process.close()


@pytest.mark.tokenizer_child
def test_validate_counts_with_its_child_as_it_counts_in_process(tiny_model, tmp_path):
    """A full `validate` starts the child before the config loads and counts every row with it: the same
    figures as the tokenizer loaded in this process."""
    from conftest import FIXTURES
    from xtuner_recipes.cli import main
    from xtuner_recipes.validate import runner
    from xtuner_recipes.validate.runner import validate_config

    config = tmp_path / "c.py"
    assert main(["gen", "medqa", "--model", str(tiny_model), "--data", str(FIXTURES / "data" / "medqa_us.jsonl"),
                 "-o", str(config)]) == 0
    started = []
    original = runner._early_tokenizer
    runner._early_tokenizer = lambda flat: started.append(original(flat)) or started[-1]
    try:
        kept: dict = {}
        with_child = validate_config(str(config), keep=kept)
    finally:
        runner._early_tokenizer = original
    assert isinstance(started[0], TokenizerProcess) and kept["context"].early is started[0]
    in_process = validate_config(str(config), tokenizer_process=False)
    assert with_child.stats["tokens_max"] > 0 and with_child.as_dict() == in_process.as_dict()
