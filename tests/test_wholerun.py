"""The whole run's time (#25): xtuner's own EvaluateChatHook decides when it generates, and ``wholerun`` counts the
same rounds; every part is in validate's stats, text and JSON."""

import json
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtuner_recipes.validate.estimate import timing, wholerun


@pytest.fixture(scope="session")
def hook_and_checkpoint(tiny_model):
    """xtuner's EvaluateChatHook built once (its tokenizer is the tiny model's), set up anew for each example, and
    mmengine's CheckpointHook class."""
    from mmengine.hooks import CheckpointHook
    from transformers import AutoTokenizer
    from xtuner.engine.hooks import EvaluateChatHook

    hook = EvaluateChatHook(tokenizer=dict(type=AutoTokenizer.from_pretrained,
                                           pretrained_model_name_or_path=str(tiny_model)),
                            evaluation_inputs=["a question"])

    def make(*, every, tokens, inputs):
        hook.every_n_iters, hook.max_new_tokens, hook.evaluation_inputs = every, tokens, ["a question"] * inputs
        return hook

    return make, CheckpointHook


@settings(max_examples=150, deadline=None)
@given(total=st.integers(1, 400), every=st.none() | st.integers(1, 60), interval=st.integers(-1, 80),
       save_last=st.booleans(), tokens=st.integers(1, 700), inputs=st.integers(1, 3))
def test_generation_rounds_are_the_ones_xtuners_hook_makes(hook_and_checkpoint, total, every, interval, save_last,
                                                           tokens, inputs):
    """The real EvaluateChatHook and mmengine's CheckpointHook, stepped through a run's iterations as mmengine's
    loop calls them (runner.iter is the iteration done, 0-based, at after_train_iter): the max_new_tokens of each
    round of generation it makes equal ``wholerun.generations``."""
    make_hook, checkpoint_type = hook_and_checkpoint
    hook = make_hook(every=every, tokens=tokens, inputs=inputs)
    checkpoint = checkpoint_type(interval=interval, by_epoch=False, save_last=save_last)
    runner = types.SimpleNamespace(iter=0, max_iters=total, hooks=[checkpoint], logger=_Quiet())
    made = []
    hook._generate_samples = lambda runner, max_new_tokens=None, save_eval_output=False: made.append(
        hook.max_new_tokens if max_new_tokens is None else max_new_tokens)
    hook.before_train(runner)
    for done in range(total):
        runner.iter = done
        hook.after_train_iter(runner, done)
    runner.iter = total
    hook.after_train(runner)
    saves = wholerun.saves({"interval": interval, "by_epoch": False, "save_last": save_last}, total)
    chat = wholerun.Chat(inputs=inputs, max_new_tokens=tokens, every=every)
    assert wholerun.generations(chat, total=total, saves=saves) == made


class _Quiet:
    def info(self, *args, **kwargs):
        pass


def test_validate_gives_the_whole_run_part_by_part(tmp_path, tiny_model, cli):
    from conftest import write_jsonl

    rows = [{"question": f"Which drug treats condition {i}?", "options": {"A": f"drug a{i}", "B": f"drug b{i}"},
             "answer_idx": "A", "answer": f"drug a{i}", "meta_info": "step1"} for i in range(40)]
    data = write_jsonl(tmp_path / "medqa.jsonl", rows)
    config = tmp_path / "medqa.py"
    cli("gen", "medqa", "--model", tiny_model, "--data", data, "-o", config, "--set", "max_length=512",
        "--set", "evaluation_freq=10", check_rc=0)
    stats = json.loads(cli("validate", config, "--format", "json").stdout)[0]["stats"]
    parts = stats["run_parts_s"]
    assert list(parts) == ["load", "data", "iterations", "evaluation", "checkpoints", "pth_to_hf", "merge"]
    assert all(0 <= low <= high for low, high in parts.values())
    low, high = stats["run_hours_range"]
    assert low == round(sum(p[0] for p in parts.values()) / 3600, 2) and high >= low
    # the iterations part is the iteration estimate over the run's iterations
    fast, slow = stats["seconds_per_iter_range"]
    low_total, high_total = stats.get("total_iters_range") or (stats["total_iters"], stats["total_iters"])
    # (the range's ends are rounded to a millisecond an iteration, the part to a tenth of a second)
    assert parts["iterations"] == [pytest.approx(fast * low_total, abs=0.05 + 5e-4 * low_total),
                                   pytest.approx(slow * high_total, abs=0.05 + 5e-4 * high_total)]
    # replies after training as long as the data's (a few tokens here) at the fast end, max_new_tokens at the slow
    assert 0 < parts["evaluation"][0] < parts["evaluation"][1] / 5
    # the answer: each part's middle, evaluation at its fast end (a fine-tuned model's replies end like its data's)
    at = stats["run_point_s"]
    # this host's pace unknown: evaluation's fast end at the fastest host the runs saw (a token's cost is mostly
    # the host's), the answer at the reference pace, as the committed estimates took it
    model = timing.load_model()
    fastest, slowest = timing.pace_range(model)
    assert parts["evaluation"][0] == pytest.approx(at["evaluation"] * fastest / model["host_pace_us"], abs=0.1)
    assert parts["evaluation"][0] < at["evaluation"] < parts["evaluation"][1]
    assert f"over the {fastest:.1f}–{slowest:.1f} µs hosts' paces" in stats["run_basis"]
    assert all(at[name] == round(sum(ends) / 2, 1) for name, ends in parts.items() if name != "evaluation")
    assert stats["run_hours"] == round(sum(at.values()) / 3600, 2) and low <= stats["run_hours"] <= high
    text = cli("validate", config).stdout
    line = next(line for line in text.splitlines() if "for the whole run on one" in line)
    for part in parts:
        assert f"{part} " in line, (part, line)
    assert "  iterations: ~" in text


def test_saves_follow_mmengines_checkpoint_hook():
    assert wholerun.saves({"interval": 500, "by_epoch": False}, 1200) == [500, 1000, 1200]
    assert wholerun.saves({"interval": 600, "by_epoch": False, "save_last": False}, 1200) == [600, 1200]
    assert wholerun.saves({"interval": -1, "by_epoch": False}, 30) == [30]
    # by epoch (mmengine's default): every interval epochs in an epoch loop, nothing in an iteration loop
    assert wholerun.saves({"interval": 1}, 90, per_epoch=30, epoch_loop=True) == [30, 60, 90]
    assert wholerun.saves({"interval": 2}, 90, per_epoch=30, epoch_loop=True) == [60, 90]
    assert wholerun.saves({"interval": 500}, 90, per_epoch=30, epoch_loop=False) == []


def test_a_generated_token_costs_the_fitted_call_at_this_hosts_pace():
    """decode_step: the table's decode cost a linear call (fitted to the end-to-end runs' evaluation rounds) scaled
    by the host's pace like the iterations' host side; calibrate's own, where it measured, is taken as it is."""
    from xtuner_recipes.validate.estimate import cards
    from xtuner_recipes.validate.estimate.count import arch_of
    from xtuner_recipes.validate.estimate.gpu import Run

    arch = arch_of(dict(model_type="llama", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                        num_key_value_heads=32, intermediate_size=11008, vocab_size=103168))[0]
    run, card, model = Run(max_length=1024, quantization="nf4"), cards.find("NVIDIA H200"), timing.load_model()
    calls = sum(group.count for group in arch.all_linears())
    weights = arch.total_params * 0.5 / (card.bandwidth_gbs * 1e9)
    at_reference = wholerun.decode_step(model, arch, run, card)
    assert at_reference == pytest.approx(calls * model["decode_seconds_per_call"] + weights)
    slower = dict(model, host_op_us=2 * model["host_pace_us"])
    assert wholerun.decode_step(slower, arch, run, card) == pytest.approx(2 * at_reference - weights)
    # the fit's rows: the rounds whose new tokens are known, a token taking 0.1-0.2 s on the H200 hosts measured
    assert len(model["decode_rows"]) == model["rows_behind"]["decode_call"] == 4
    assert all(0.09 < row["seconds_per_token"] < 0.25 for row in model["decode_rows"])
    measured = dict(slower, seconds_per_decode_call={"nf4": 1e-4})  # calibrate's, not paced again
    assert wholerun.decode_step(measured, arch, run, card) == pytest.approx(calls * 1e-4 + weights)


def test_the_end_to_end_harness_reads_each_part_from_the_logs_timestamps():
    """benchmarks/gpu/h200_whole_run.parts_of, which the decode fit's rows and the whole-run check read: a round
    runs to the next line that is not a sample, less the iteration that line logs; the iterations are their lines'
    span less the rounds and saves inside it (mmengine's logged times are 10-iteration means, and the iteration
    after a round counts the round: summing them counted each round twice)."""
    import importlib.util

    path = Path(__file__).parents[1] / "benchmarks" / "gpu" / "h200_whole_run.py"
    spec = importlib.util.spec_from_file_location("h200_whole_run", path)
    whole = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(whole)

    def line(second, text):
        return f"12/07 10:{second // 60:02d}:{second % 60:02d} - mmengine - INFO - {text}"

    log = "\n".join([
        line(0, "Config: ..."),
        line(30, "before_train in EvaluateChatHook."), line(36, "Sample output:"), "<s> a reply", "",
        line(40, "Checkpoints will be saved to /w."),
        *(line(40 + 2 * i, f"Iter(train) [{i}/20]  lr: 1e-4  time: 2.0000  data_time: 0.01") for i in range(1, 11)),
        line(60, "after_train_iter in EvaluateChatHook."), line(100, "Sample output:"), "<s> a long reply", "",
        # the iteration after the round: its logged (windowed) time carries the round; its stamp is 2 s later
        line(102, "Iter(train) [11/20]  lr: 1e-4  time: 6.2000  data_time: 4.2"),
        *(line(100 + 2 * i, f"Iter(train) [{10 + i}/20]  lr: 1e-4  time: 2.0000  data_time: 0.01") for i in range(2, 11)),
        line(121, "Saving checkpoint at 20 iterations"), line(125, "after_train in EvaluateChatHook."),
        line(133, "Sample output:"), "<s> a reply", ""])
    start = whole._stamps(log)[0][0] - 10  # the process started 10 s before its first line
    parts = whole.parts_of(log, start, start + 145)
    assert parts["evaluation_rounds_s"] == [10.0, 40.0, 10.0]  # the last round runs to the process's end
    assert parts["evaluation"] == 60.0 and parts["checkpoints"] == 4.0
    assert parts["iterations"] == 40.0  # 40 -> 120 s less the 40 s round; not the logged times' 44.2 s
    assert parts["iteration_median_s"] == 2.0 and parts["iterations_logged"] == 20
    assert parts["load_and_data"] == 40.0 and parts["train_process"] == 145.0 and parts["other"] == 1.0
