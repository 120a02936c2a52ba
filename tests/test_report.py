"""`validate --report`: the HTML page in a real headless browser, and the parts it draws held to
their oracles (xtuner's layout for the samples, mmengine's schedulers, the H200 measurements)."""

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from browser import chromium, open_page
from conftest import FIXTURES, write_jsonl

ROOT = Path(__file__).parents[1]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
DATA = {"oasst1": "oasst1.jsonl", "medqa": "medqa_us.jsonl", "msagent": "msagent.jsonl"}
needs_browser = pytest.mark.skipif(
    chromium() is None and os.environ.get("CI") != "true",
    reason="no chromium on PATH (`apt-get install chromium`; .ci/run installs it, and CI fails without it)")


def repeated(folder: Path, recipe: str, times: int = 60) -> Path:
    """The fixture rows, repeated: enough samples for a schedule of whole warmup iterations."""
    rows = (FIXTURES / "data" / DATA[recipe]).read_text(encoding="utf-8").splitlines()
    path = folder / f"{recipe}.jsonl"
    path.write_text("\n".join(rows * times) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def reports(tiny_model, tmp_path_factory, worker_id, cli):
    """recipe -> (config, report.html, validate's result), the CLI run in this process, made once a run
    (conftest.once_a_run: the first test to ask makes them, the others read what it kept)."""
    import subprocess

    from conftest import once_a_run

    def make(folder):
        results = {}
        for recipe in DATA:
            config, page = folder / f"{recipe}.py", folder / f"{recipe}.html"
            cli("gen", recipe, "--model", tiny_model, "--data", repeated(folder, recipe), "-o", config, check_rc=0)
            result = cli("validate", config, "--report", page)
            results[recipe] = {"config": str(config), "page": str(page), "returncode": result.returncode,
                               "stdout": result.stdout, "stderr": result.stderr}
        return results

    made = once_a_run(tmp_path_factory, worker_id, "reports", make)
    return {recipe: (Path(result.pop("config")), Path(result.pop("page")), subprocess.CompletedProcess([], **result))
            for recipe, result in made.items()}


@needs_browser
@pytest.mark.parametrize("recipe", ["oasst1", pytest.param("medqa", marks=pytest.mark.slow),
                                    pytest.param("msagent", marks=pytest.mark.slow)])
def test_the_report_opens_in_a_browser_with_every_chart(reports, recipe):
    config, page, result = reports[recipe]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"report: {page}" in result.stderr
    html = page.read_text(encoding="utf-8")
    assert len(html.encode()) < 1024 ** 2
    seen = open_page(page, screenshot=ARTIFACTS / f"report-{recipe}.png")
    assert seen.console == [] and seen.requests == []
    for section in ("verdict", "summary", "findings", "memory", "time", "data", "schedule", "plan"):
        assert f'id="{section}"' in seen.dom, section
    charts = re.findall(r'<figure class="chart"[^>]*>(.*?)</figure>', seen.dom, flags=re.S)
    assert len(charts) == 4  # memory, the whole run's parts, token lengths, learning rate
    for chart in charts:
        assert chart.lstrip().startswith("<svg") and chart.count("<path") >= 5
    # the whole run's time, each part named, the chart's legend too
    time = re.search(r'<section id="time">(.*?)</section>', seen.dom, flags=re.S).group(1)
    for part in ("load", "iterations", "evaluation", "checkpoints", "pth_to_hf", "merge"):
        assert f"{part} " in time, part
    assert "The whole run: about" in time and 'id="run-chart"' in time
    assert seen.dom.count('<div class="sample">') == 3 and 'class="output"' in seen.dom and 'class="input"' in seen.dom
    assert "xtuner train" in seen.dom
    # Two verdicts: the config has no error, but this machine has no GPU, so the banner is not green and says why.
    assert "The config is ready" in seen.dom and "This machine cannot launch it now" in seen.dom and "E001" in seen.dom
    assert 'class="verdict machine"' in seen.dom and "Ready to train" not in seen.dom
    from matplotlib.image import imread

    pixels = imread(ARTIFACTS / f"report-{recipe}.png")
    assert (pixels[..., :3] < 0.9).any(axis=-1).mean() > 0.03  # not a blank page


@needs_browser
def test_the_browser_check_sees_a_request_and_a_console_error(tmp_path):
    """The harness can fail: a page that fetches and logs is caught on both counts."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("boom")</script></body></html>')
    seen = open_page(page)
    assert seen.requests == ["http://127.0.0.1:9/x.png"]
    assert any('"boom"' in line for line in seen.console)


def test_an_existing_report_is_kept_without_force(reports, cli):
    config, page, _ = reports["oasst1"]
    before = page.read_bytes()
    result = cli("validate", config, "--report", page)
    assert result.returncode == 2 and "exists" in result.stderr and page.read_bytes() == before
    assert cli("validate", config, config, "--report", page.parent / "two.html").returncode == 2


# The sample as drawn: token positions equal xtuner's layout (tokens.layout.layout, itself held to encode_fn).
turns = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 3), st.booleans(), st.booleans()),
                 min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(turns, st.integers(0, 2), st.sampled_from([None, 0, 1, 2]), st.integers(1, 150))
def test_sample_segments_match_xtuner_layout(shapes, bos, eos, max_length):
    from xtuner_recipes.report.sections import example_segments
    from xtuner_recipes.validate.tokens.layout import Turn, layout

    shaped = [Turn(i, o, s, eos=e, loss=loss) for i, o, s, e, loss in shapes]
    rendered = [{"input": "q" * i, "output": "a" * o, "sep": "\n" * s} for i, o, s, _, _ in shapes]
    segments = example_segments(rendered, shaped, bos=bos, eos=eos)
    expected = layout(shaped, bos=bos, eos=eos, max_length=max_length)
    assert sum(s.tokens for s in segments) == expected.full_length
    trained = sum(max(0, min(s.start + s.tokens, max_length) - s.start) for s in segments if s.trained)
    assert trained == expected.labelled
    # what the page marks: the tokens each span keeps add up to xtuner's sample after the cut, and a span is
    # "crosses" (marked with its kept count) exactly when the cut falls inside it
    assert sum(s.kept(max_length) for s in segments) == expected.length
    assert sum(s.kept(max_length) for s in segments if s.trained) == expected.labelled
    assert all(s.crosses(max_length) == (s.start < max_length < s.start + s.tokens) for s in segments)
    assert all(b.start == a.start + a.tokens for a, b in zip(segments, segments[1:]))


def test_learning_rates_follow_the_config(reports):
    """mmengine's schedulers, stepped by its ParamSchedulerHook: warmup from lr x start_factor to lr at
    the warmup's end, cosine down to eta_min at the last iteration."""
    from xtuner_recipes.report.sections import learning_rates, marks
    from xtuner_recipes.validate.inputs import setting
    from xtuner_recipes.validate.runner import validate_config

    config, _, _ = reports["oasst1"]
    keep: dict = {}
    report = validate_config(str(config), keep=keep)
    facts = keep["context"]
    rates, why = learning_rates(facts.config, facts.settings, facts.schedule)
    lr, warmup = setting(facts.config, "optim_wrapper.optimizer.lr"), report.stats["warmup_iters"]
    start = setting(facts.config, "param_scheduler")[0]["start_factor"]
    assert why is None and len(rates) == report.stats["total_iters"]
    assert rates[0] == pytest.approx(lr * start) and rates[warmup] == pytest.approx(lr)
    assert max(rates) == pytest.approx(lr) and rates[-1] < lr * 0.01
    assert all(a <= b for a, b in zip(rates[:warmup], rates[1:warmup + 1]))
    saves, evaluations = marks(facts.config, facts.settings, facts.schedule)
    assert saves[-1] == report.stats["total_iters"] and evaluations[0] == 0


def test_the_time_model_is_the_fit_of_the_committed_runs():
    """time_model.json is what benchmarks/gpu/fit_time.fit makes of the rows in benchmarks/results/ (no hand
    edits). The least squares agree to 1e-6 (scipy's solver stops once a step moves the constants by under 1e-8 of
    themselves, and OpenBLAS's threads need not sum in one order: two runs on this host differed by 3.4e-9), every
    other value exactly."""
    import importlib.util
    import statistics

    import numpy as np

    from xtuner_recipes.validate.estimate import timing

    spec = importlib.util.spec_from_file_location("fit_time", ROOT / "benchmarks" / "gpu" / "fit_time.py")
    fit_time = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit_time)
    committed = timing.load_model()
    # the fit at the committed reference pace and combination (fit_time.py tries the whole grid: 116 fits)
    refit = json.loads(json.dumps(fit_time.fit(paces=[committed["host_pace_us"]], smooth=[committed["smooth"]])))

    def same(a, b) -> bool:
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
        if isinstance(a, float) and isinstance(b, float):
            return a == pytest.approx(b, rel=1e-6, abs=1e-15)
        return a == b

    assert same(refit, committed), (refit, committed)
    edited = refit | {"seconds_per_call": dict(refit["seconds_per_call"], nf4=refit["seconds_per_call"]["nf4"] * 1.000001)}
    assert not same(edited, committed)  # a hand edit of one constant is seen
    # the fit's rows: the H200's 11, the MoE 4, the first held-out check's 8 runs (now in-sample) and the first
    # end-to-end run's iterations; the model before this one's held-out record, from the estimates committed
    # before those runs
    # the grid's neighbours of the committed choice fit the rows no better
    found = fit_time.points()
    for pace, smooth in [(committed["host_pace_us"] + step, committed["smooth"]) for step in (-0.25, 0.25)] + [
            (committed["host_pace_us"], other) for other in fit_time.SMOOTH if other != committed["smooth"]]:
        assert fit_time.solve(found, pace, smooth)["cost"] >= committed["fit_cost"] - 1e-12, (pace, smooth)
    # the fit's rows: the H200's 11, the MoE 4, the first held-out check's 8 runs, the first end-to-end run's
    # iterations and the second check's 26 runs of its first 8 configs (each with its host's pace)
    assert len(committed["fitted_on"]) == 11 + 4 + 8 + 1 + 26
    assert sum("host_op_us" in row for row in committed["fitted_on"]) == 26
    # v4's held-out configs: none of their runs is a row, each error against the estimate committed before its
    # runs, at the reference pace and at its runs' own paces
    estimated = {row["name"]: row["estimate"] for row in json.loads(
        (ROOT / "benchmarks" / "results" / "h200-time-check3-estimate-v4.json").read_text())}
    assert {row["name"] for row in committed["held_out"]} == set(fit_time.HELD_OUT) == set(estimated)
    assert not {row["name"].rsplit("-", 1)[0] for row in committed["fitted_on"]} & set(estimated)
    runs = json.loads((ROOT / "benchmarks" / "results" / "h200-time-check3.json").read_text())
    for row in committed["held_out"]:
        made = estimated[row["name"]]["h100" if "H100" in row["card"] else "h200"]
        assert row["estimate_s"] == made["seconds_per_iter"] and row["error_pct"] == round(
            100 * (made["seconds_per_iter"] - row["measured_s"]) / row["measured_s"], 1)
        paces = [run["host_op_us"] for run in runs if run["name"] == row["name"]]
        at = statistics.median(float(np.interp(pace, *zip(*made["at_pace"]))) for pace in paces)
        assert row["paced_estimate_s"] == round(at, 4) and row["host_op_us"] == [min(paces), max(paces)]
    # the model before this one (v3): its record over the second check's 12 configs, from its committed estimates
    errors = json.loads((ROOT / "benchmarks" / "results" / "h200-time-check3-errors.json").read_text())
    before = {row["name"]: row["estimate"] for row in json.loads(
        (ROOT / "benchmarks" / "results" / "h200-time-check3-estimate.json").read_text())}
    kept = [row for row in errors["rows"] if "excluded" not in row]
    for row in kept:
        assert row["estimate_s"] == before[row["name"]]["h100" if "H100" in row["card"] else "h200"]["seconds_per_iter"]
    assert committed["before"]["configs"] == len(kept) == 12 and committed["before"]["error_pct"] == [
        min(row["error_pct"] for row in kept), max(row["error_pct"] for row in kept)]


def test_the_hosts_side_follows_the_hosts_pace_and_a_padded_batch_pays_its_mask():
    from xtuner_recipes.validate.estimate import timing
    from xtuner_recipes.validate.estimate.arch import Arch
    from xtuner_recipes.validate.estimate.gpu import Run

    model, run = timing.load_model(), Run(max_length=512, batch_size=4)
    arch = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)
    shape = {"sequences": 4, "length": 512}
    padded, packed = timing.parts(model, arch, run, **shape), timing.parts(model, arch, run, **shape, causal=True)
    assert padded["mask"] == pytest.approx(model["seconds_per_masked_layer"] * 32 * 3) and "mask" not in packed
    slow = timing.parts(dict(model, host_op_us=2 * model["host_pace_us"]), arch, run, **shape)
    for name in timing.HOST_PARTS:  # the host's side twice as long on a host twice as slow; the card's the same
        assert slow.get(name, 0.0) == pytest.approx(2 * padded.get(name, 0.0))
    for name in timing.GPU_PARTS:
        assert slow[name] == padded[name]
    card, host = timing.sides(padded)
    power = model["smooth"]
    assert timing.combine(model, padded) == pytest.approx((card ** power + host ** power) ** (1 / power))
    assert max(card, host) < timing.combine(model, padded) < card + host


def test_expected_iteration_time_over_random_batches():
    from xtuner_recipes.validate.estimate.gpu import Run
    from xtuner_recipes.validate.estimate.timing import expected, load_model, per_iteration

    from xtuner_recipes.validate.estimate.arch import Arch

    model, run = load_model(), Run(max_length=1024)
    arch = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)

    def one(sequences, length):
        return per_iteration(model, arch, run, sequences=sequences, length=length)

    lengths = [100, 300, 700, 900] * 50
    assert expected(model, arch, run, sequences=1, lengths=lengths) == pytest.approx(
        sum(one(1, n) for n in lengths) / 200)
    assert expected(model, arch, run, sequences=4, lengths=[500] * 40) == pytest.approx(one(4, 500))
    # batches pad to their longest: more than the same samples at their mean length, less than all at the longest
    assert one(4, 500) < expected(model, arch, run, sequences=4, lengths=lengths) < one(4, 900)


def seven_b_model(folder: Path, tiny_model: Path) -> Path:
    """The tiny model's tokenizer beside internlm-chat-7b's shape (config.json only: validate reads no weights)."""
    import shutil

    shutil.copytree(tiny_model, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                  intermediate_size=11008, vocab_size=103168, max_position_embeddings=2048)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_time_is_given_for_any_counted_model_and_card(tiny_model, tmp_path, cli, reports):
    from xtuner_recipes.validate.estimate import cards, timing
    from xtuner_recipes.validate.estimate.count import arch_of
    from xtuner_recipes.validate.estimate.gpu import Run
    from xtuner_recipes.validate.inputs import Options
    from xtuner_recipes.validate.runner import validate_config

    model = seven_b_model(tmp_path / "internlm-chat-7b-shape", tiny_model)
    data = repeated(tmp_path, "medqa")
    cli("gen", "medqa", "--model", model, "--data", data, "-o", tmp_path / "qlora.py", check_rc=0)
    stats = validate_config(str(tmp_path / "qlora.py")).stats
    assert stats["launch"]["zero_stage"] == 2  # the launch gen and plan print: --deepspeed deepspeed_zero2
    arch, _ = arch_of(json.loads((model / "config.json").read_text()))
    expected = timing.per_iteration(timing.load_model(), arch, Run(max_length=2048, zero_stage=2), sequences=1,
                                    length=2048)
    assert stats["seconds_per_iter"] == pytest.approx(expected, abs=1e-3) and stats["time_card"] == "NVIDIA H200"
    assert stats["train_hours"] == pytest.approx(expected * stats["total_iters"] / 3600, abs=0.01)
    low, high = stats["seconds_per_iter_range"]
    assert low < stats["seconds_per_iter"] < high and "held out so far: 4 configs" in stats["time_basis"]
    assert "the model before it missed 12 held-out configs" in stats["time_basis"]
    assert "the range over the 5.8–12.1 µs the measured runs' hosts took" in stats["time_basis"]
    # the range: the estimate at the slowest and fastest hosts' paces the runs saw, widened by what the fit
    # missed its own dense rows and the dense held-out configs by
    fitted = timing.load_model()
    missed = [row["error_pct"] for row in fitted["held_out"] if row["family"] == "dense"]
    own = fitted["residual_pct"]["dense"]
    at = [timing.per_iteration(dict(fitted, host_op_us=pace), arch, Run(max_length=2048, zero_stage=2), sequences=1,
                               length=2048) for pace in timing.pace_range(fitted)]
    assert high == pytest.approx(max(expected, at[1]) / (1 + min([own[0], *missed]) / 100), abs=2e-3)
    assert low == pytest.approx(min(expected, at[0]) / (1 + max([own[1], *missed]) / 100), abs=2e-3)
    text = cli("validate", tmp_path / "qlora.py", "--report", tmp_path / "qlora.html").stdout
    assert "time: ~" in text and "on one NVIDIA H200, range " in text
    page = (tmp_path / "qlora.html").read_text(encoding="utf-8")
    assert "of training on one NVIDIA H200" in page and f"{stats['total_iters']} iterations" in page
    if chromium():  # the README's screenshot (docs/report.png) is this page
        seen = open_page(tmp_path / "qlora.html", screenshot=ARTIFACTS / "report-7b-shape.png")
        assert seen.console == [] and seen.requests == []
    # another card: scaled, and said so; slower where the card computes less
    a10 = validate_config(str(tmp_path / "qlora.py"), options=Options(gpu=cards.find("a10").name)).stats
    assert a10["time_scaled"] and "scaled from the NVIDIA H200 and NVIDIA H100 80GB HBM3" in a10["time_basis"]
    # the H100 ran fitted rows: its time is not scaled, and doctor says the same of it
    from xtuner_recipes.cli.doctor import time_basis

    h100 = validate_config(str(tmp_path / "qlora.py"), options=Options(gpu=cards.find("h100").name)).stats
    assert not h100["time_scaled"] and "scaled from" not in h100["time_basis"]
    assert "fitted to runs on this card" in time_basis(cards.find("h100").name)
    assert "scaled from the NVIDIA H200 and NVIDIA H100 80GB HBM3" in time_basis(cards.find("a10").name)
    a10_text = cli("validate", tmp_path / "qlora.py", "--gpu", "a10").stdout
    assert "(scaled from the NVIDIA H200 and NVIDIA H100 80GB HBM3, not measured on this card)" in a10_text
    assert a10["seconds_per_iter"] > 2 * stats["seconds_per_iter"]
    v100 = validate_config(str(tmp_path / "qlora.py"), options=Options(gpu="Tesla V100-SXM2-32GB")).stats
    assert "has no bf16" in v100["time_basis"]
    unknown = validate_config(str(tmp_path / "qlora.py"), options=Options(gpu="Quadro P400")).stats
    assert "seconds_per_iter" not in unknown and "not in the table of cards" in unknown["time_basis"]
    assert cli("validate", tmp_path / "qlora.py", "--gpu", "p400").returncode == 2
    # 16-bit LoRA and the tiny model: both get a time now (the work is counted, whatever the shape)
    cli("gen", "medqa", "--model", model, "--data", data, "-o", tmp_path / "lora.py",
        "--set", "~model.llm.quantization_config", check_rc=0)
    assert validate_config(str(tmp_path / "lora.py")).stats["seconds_per_iter"] > 0
    tiny = validate_config(str(reports["oasst1"][0])).stats
    assert tiny["seconds_per_iter"] > 0
    # the tiny model's card work is nothing: the host's launches set the pace, and the basis says who measures them
    assert tiny["time_bound"] == "host" and "`xtuner-recipes calibrate` measures this one's" in tiny["time_basis"]
    assert "the host's launches set this pace" in cli("validate", reports["oasst1"][0]).stdout
    assert a10["time_bound"] == "card" and "the host sets" not in a10["time_basis"]
    # full fine-tuning: not measured, and said so
    cli("gen", "medqa", "--model", model, "--data", data, "-o", tmp_path / "full.py", "--set", "~model.lora",
        check_rc=0)
    assert validate_config(str(tmp_path / "full.py")).stats["time_basis"] == (
        "not estimated: measured with LoRA adapters only")


@pytest.mark.parametrize("machine, banner, words", [
    ({"ok": True, "problems": []}, "ok", "Ready to train: no errors, and this machine can launch it."),
    ({"ok": False, "problems": [{"code": "E003", "message": "deepspeed is not installed",
                                 "fix": "pip install -c constraints/xtuner-0.2.0.txt deepspeed==0.16.2"}]},
     "machine", "This machine cannot launch it now"),
    (None, "ok", "Ready to train: no errors."),
])
def test_the_banner_is_green_only_when_both_verdicts_hold(tmp_path, machine, banner, words):
    from xtuner_recipes.findings import ConfigReport
    from xtuner_recipes.report import render

    config = tmp_path / "c.py"
    config.write_text("lr = 1\n")
    page = render(ConfigReport(config=str(config), machine=machine))
    assert f'class="verdict {banner}"' in page and words in page
    if machine and not machine["ok"]:
        assert "deepspeed==0.16.2" in page  # the fix, named


@pytest.mark.parametrize("recipe", ["oasst1", "medqa", "msagent"])
def test_validate_the_report_and_plan_give_one_launch_and_one_set_of_numbers(reports, recipe, cli):
    """The launch gen and plan print (--deepspeed deepspeed_zero2, expandable segments for unpacked data) is the
    one the memory and time are for, in validate's JSON, its report and plan's JSON alike."""
    import html

    from xtuner_recipes.plan import EXPANDABLE

    config, page, _ = reports[recipe]
    stats = json.loads(cli("validate", config, "--format", "json").stdout)[0]["stats"]
    plan = json.loads(cli("plan", config, "--json").stdout)
    assert stats["launch"]["deepspeed"] == "deepspeed_zero2" and stats["launch"]["zero_stage"] == 2
    for key in ("launch", "estimated_peak_gib", "total_iters", "packed", "host_peak_gib", "run_hours",
                "seconds_per_iter", "time_bound"):
        assert plan["stats"][key] == stats[key], key
    # plan prints validate's time line for its commands, word for word
    time_line = next(line for line in cli("validate", config).stdout.splitlines() if line.strip().startswith("time: ~"))
    assert f"# note: {time_line.strip()}" in cli("plan", config).stdout
    train = plan["steps"][0]["command"]
    assert "--deepspeed deepspeed_zero2" in train and (EXPANDABLE in train) == (stats["packed"] is False)
    assert stats["packed"] is (recipe != "msagent")  # the MS-Agent recipe trains unpacked
    text = html.unescape(page.read_text(encoding="utf-8"))
    assert f"{stats['estimated_peak_gib']:.1f} GiB" in text and "for --deepspeed deepspeed_zero2 (ZeRO-2) on 1 GPU" in text
    assert train in text  # the report's plan section prints the same command
