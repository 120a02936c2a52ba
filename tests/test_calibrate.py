"""``calibrate``: the measurement is made on the config's real model code (xtuner's SupervisedFinetune, peft's
LoRA, mmengine's optimizer wrapper) with one and two layers, solved into the time model's constants, kept in the cache,
and from then on the time ``validate`` (and so plan, train and the report) gives for that card.

This machine has no GPU: the real measurement runs on its CPU with a 16-bit config of the tiny model (the CPU is
then the "card"); a 4-bit config is refused here with the reason."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtuner_recipes.validate.estimate import calibration, count, flops, timing
from xtuner_recipes.validate.estimate.gpu import Run


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The user's cache as calibrate finds it: ``$XDG_CACHE_HOME/xtuner-recipes/calibration.json``."""
    monkeypatch.delenv("XTUNER_RECIPES_CALIBRATION")  # conftest's isolation, undone for these tests
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "xtuner-recipes" / "calibration.json"


def _config(cli, tiny_model, tmp_path, *extra):
    data = Path(__file__).parent / "fixtures" / "data" / "oasst1.jsonl"
    cli("gen", "oasst1", "--model", tiny_model, "--data", data, "-o", "cfg.py", "--set", "max_length=192", *extra,
        check_rc=0)
    return tmp_path / "cfg.py"


def test_calibrate_then_validate_gives_the_calibrated_time(cli, tiny_model, tmp_path, cache):
    config = _config(cli, tiny_model, tmp_path, "--set=~model.llm.quantization_config")
    result = cli("calibrate", config, "--scratch", tmp_path, "--json", check_rc=0)
    found = json.loads(result.stdout)
    entry = found["calibration"]
    assert entry["card"]["name"] == calibration.CPU_CARD
    assert json.loads(cache.read_text())[calibration.CPU_CARD]["quantization"]["none"]["flops_per_s"] > 0
    measured = entry["quantization"]["none"]
    assert [(row["sequences"], row["length"]) for row in measured["rows"]] == [(1, 192), (1, 64)] * 2
    assert entry["card"]["bandwidth_gbs"] > 0 and entry["write_gbs"] > 0 and entry["machine"]["host_op_us"] > 0
    # the round trip is recorded beside the launch pace; on a CPU there is no device to wait for, so the two are
    # within noise of each other here (CI once measured 4.16 µs against 4.48), and only being timed is asserted
    assert entry["machine"]["host_sync_us"] > 0
    assert [row["layers"] for row in measured["decode_rows"]] == [1, 2] and measured["decode_rows"][0]["seconds"] > 0
    assert not list(tmp_path.glob("xtuner-recipes-calibrate-*")) and not list(tmp_path.glob(".calibrate-*"))

    # The constants are the least-squares fit of the four timed steps (one and two layers, two sizes each), and
    # the time model counts each step as calibrate did: its FLOPs and calls from its own copy of the model, so
    # that the estimate of a step is the fit's line through it (the times themselves are this machine's noise).
    fields = json.loads((tiny_model / "config.json").read_text())
    model = calibration.calibrated_model(timing.load_model(), entry, "none")
    run = Run(max_length=192, quantization="none", lora_r=64)
    assert [row["layers"] for row in measured["rows"]] == [1, 1, 2, 2]
    refit = calibration.solve(measured["rows"], ("flops", "calls", "one"))
    assert 1 / refit["flops"] == pytest.approx(measured["flops_per_s"]) and refit["one"] == pytest.approx(
        measured["seconds_per_iteration"])
    for row in measured["rows"]:
        arch, _ = count.arch_of({**fields, "num_hidden_layers": row["layers"]})
        shape = {"sequences": row["sequences"], "length": row["length"]}
        assert row["flops"] == flops.iteration(arch, **shape, lora_r=64) - flops.causal_skipped(arch, **shape)
        line = (row["flops"] / measured["flops_per_s"] + row["calls"] * measured["seconds_per_call"]
                + measured["seconds_per_iteration"] + row.get("known_s", 0.0))
        assert timing.per_iteration(model, arch, run, **shape) == pytest.approx(line, rel=1e-9)

    # validate names the card calibrate saved, and its time is the one calibrate printed for this config
    report = json.loads(cli("validate", config, "--gpu", "cpu", "--format", "json").stdout)[0]["stats"]
    assert report["time_calibrated"] is True and report["time_card"] == "cpu" and not report["time_scaled"]
    assert "xtuner-recipes calibrate` measured on this card" in report["time_basis"]
    assert report["seconds_per_iter"] == pytest.approx(found["this_config"]["calibrated_s"], abs=6e-4)
    # the decode step and the disk's write speed are the measured ones in the whole run's parts
    assert report["run_parts_s"]["checkpoints"][0] == report["run_parts_s"]["checkpoints"][1]

    text = cli("calibrate", config, "--scratch", tmp_path, check_rc=0)
    assert "TFLOPS achieved" in text.stdout and str(cache) in text.stdout
    # the host's probe, beside the pace the constants hold at and the range the fit's runs' hosts read
    model = timing.load_model()
    paces = [*model["host_pace_range_us"], *(pace for row in model["held_out"] for pace in row["host_op_us"])]
    (host,) = [line for line in text.stdout.splitlines() if line.startswith("host: ")]
    assert host.startswith(f"host: {json.loads(cache.read_text())[calibration.CPU_CARD]['machine']['host_op_us']} µs")
    assert f"hold at {model['host_pace_us']:.2f} µs, its runs' hosts took {min(paces):.1f}–{max(paces):.1f} µs" in host
    assert "timing 3 training steps of 1 x 192 tokens, 2 layer(s)" in text.stderr  # progress, on stderr


def test_deeper_copies_are_measured_when_asked_and_bad_depths_refused(cli, tiny_model, tmp_path, cache):
    config = _config(cli, tiny_model, tmp_path, "--set=~model.llm.quantization_config")
    for bad in (("2", "2"), ("0", "1"), ("3", "1")):
        refused = cli("calibrate", config, "--scratch", tmp_path, "--layers", *bad)
        assert refused.returncode == 2 and f"--layers {bad[0]} {bad[1]}" in refused.stderr and not cache.exists()
    found = json.loads(cli("calibrate", config, "--scratch", tmp_path, "--layers", "1", "3", "--json",
                           check_rc=0).stdout)
    measured = found["calibration"]["quantization"]["none"]
    assert [row["layers"] for row in measured["rows"]] == [1, 1, 3, 3]
    assert [row["layers"] for row in measured["decode_rows"]] == [1, 3]
    assert measured["rows"][2]["calls"] == 3 * measured["rows"][0]["calls"]  # the 3-layer copy counted as such


def test_four_bit_needs_a_gpu_and_nothing_is_saved(cli, tiny_model, tmp_path, cache):
    config = _config(cli, tiny_model, tmp_path)
    result = cli("calibrate", config, "--scratch", tmp_path)
    assert result.returncode == 2
    assert str(config) in result.stderr and "nf4" in result.stderr and "CUDA GPU" in result.stderr
    assert not cache.exists()
    # without a config: the tutorial's QLoRA config on a Llama-2-7B shape, written for the run and refused the same
    default = cli("calibrate", "--scratch", tmp_path)
    assert default.returncode == 2 and "calibrate_oasst1.py" in default.stderr and "CUDA GPU" in default.stderr
    assert not cache.exists() and not list(tmp_path.glob("xtuner-recipes-calibrate-*"))


def test_an_unknown_card_says_what_calibrate_measures(cli, tiny_model, tmp_path, cache):
    from xtuner_recipes.validate.inputs import Options
    from xtuner_recipes.validate.runner import validate_config

    config = _config(cli, tiny_model, tmp_path)
    stats = validate_config(str(config), level="full", options=Options(gpu="Quadro P400")).stats
    assert "seconds_per_iter" not in stats
    assert "Quadro P400 is not in the table" in stats["time_basis"]
    assert "xtuner-recipes calibrate CONFIG" in stats["time_basis"] and "two transformer layers" in stats["time_basis"]
    refused = cli("validate", config, "--gpu", "quadro-p400")
    assert refused.returncode == 2 and "calibrate" in refused.stderr


def test_a_calibrated_card_outside_the_table_is_named(cli, tiny_model, tmp_path, cache):
    from xtuner_recipes.cli.doctor import time_basis
    from xtuner_recipes.validate.inputs import Options
    from xtuner_recipes.validate.runner import validate_config

    assert "not in the card table" in time_basis("NVIDIA T4") and "card table's" in time_basis("NVIDIA H200")
    entry = {"card": {"name": "NVIDIA T4", "tflops": 40.0, "bandwidth_gbs": 250.0, "memory_gb": 16, "bf16": False},
             "write_gbs": 0.8, "quantization": {"nf4": {"flops_per_s": 3e13, "seconds_per_call": 2e-4}}}
    calibration.save(entry)
    calibration.save({**entry, "quantization": {"none": {"flops_per_s": 4e13, "seconds_per_call": 1e-4}}})
    kept = calibration.load_all()["NVIDIA T4"]["quantization"]
    assert set(kept) == {"nf4", "none"}  # a second calibration adds, not replaces
    card = calibration.find_card("nvidia-t4")
    assert card.name == "NVIDIA T4" and card.bandwidth_gbs == 250.0
    assert calibration.find_card("h100").name == "NVIDIA H100 80GB HBM3"  # the table first
    assert calibration.calibrated_model(timing.load_model(), calibration.entry_for("NVIDIA T4"), "int8") is None
    # one verdict: doctor says the T4's time is calibrated, and validate's time for a 4-bit config is that one
    assert "validate's time on this card is the calibrated one" in time_basis("NVIDIA T4")
    config = str(_config(cli, tiny_model, tmp_path))
    stats = validate_config(config, level="full", options=Options(gpu="NVIDIA T4")).stats
    assert stats["time_calibrated"] is True and stats["time_card"] == "NVIDIA T4" and not stats["time_scaled"]
    assert "no bf16" in stats["time_basis"]  # a calibrated card keeps what the table would say of it
    # its range is the table's too, held-out misses included, and its basis says so
    assert "held out so far" in stats["time_basis"] and "the range covers these misses too" in stats["time_basis"]
    # a card of the table, calibrated: the table's time stays the verdict (calibrate has not yet beaten it on a
    # GPU), the calibrated one is shown beside it; doctor says the same
    before = validate_config(config, level="full", options=Options(gpu="a10")).stats
    a10 = {**entry, "card": {**entry["card"], "name": "NVIDIA A10", "bf16": True},
           "quantization": {"nf4": {"flops_per_s": 3e13, "seconds_per_call": 2e-4, "seconds_per_iteration": 0.01}}}
    calibration.save(a10)
    after = validate_config(config, level="full", options=Options(gpu="a10")).stats
    assert after["seconds_per_iter"] == before["seconds_per_iter"] and after["time_calibrated"] is False
    assert after["seconds_per_iter_calibrated"] != after["seconds_per_iter"]
    assert "shown beside it, not instead" in after["time_basis"] and "shown beside it" in time_basis("NVIDIA A10")
    # calibrate measured this host's pace: the table's time has its host's part at that pace (v4's held-out
    # configs: nearer the measured time at their runs' paces than at the reference), and doctor says so too
    model = timing.load_model()
    calibration.save({**a10, "machine": {"host_op_us": 3 * model["host_pace_us"]}})
    paced = validate_config(config, level="full", options=Options(gpu="a10")).stats
    assert paced["seconds_per_iter"] > after["seconds_per_iter"] and paced["time_calibrated"] is False
    assert f"{3 * model['host_pace_us']:.1f} µs an op as `xtuner-recipes calibrate` measured it" in paced["time_basis"]
    assert "the range over the" not in paced["time_basis"]  # this host's pace is known: no range over the hosts'
    assert f"host's part at this host's pace ({3 * model['host_pace_us']:.1f} µs" in time_basis("NVIDIA A10")


@settings(max_examples=60, deadline=None)
@given(throughput=st.floats(1e10, 1e15), per_call=st.floats(0, 1e-3), per_iteration=st.floats(0, 0.05),
       known=st.floats(0, 0.1), long_flops=st.floats(1e11, 1e14), share=st.floats(0.01, 0.5),
       calls=st.integers(10, 5000))
def test_solve_recovers_the_constants(throughput, per_call, per_iteration, known, long_flops, share, calls):
    rows = [{"flops": flops * layers, "calls": calls * layers, "known_s": known * layers,
             "seconds": flops * layers / throughput + calls * layers * per_call + per_iteration + known * layers}
            for layers in (1, 2) for flops in (share * long_flops, long_flops)]
    got = calibration.solve(rows, ("flops", "calls", "one"))
    assert 1 / got["flops"] == pytest.approx(throughput, rel=1e-6)
    assert got["calls"] == pytest.approx(per_call, rel=1e-6, abs=1e-10)
    assert got["one"] == pytest.approx(per_iteration, rel=1e-6, abs=1e-9)


def test_solve_drops_a_constant_noise_makes_negative():
    # the short steps timed slower than the long ones allow: no call cost below zero, the rest refitted
    rows = [{"flops": 1e12, "calls": 100, "seconds": 1.0}, {"flops": 1e11, "calls": 100, "seconds": 0.05},
            {"flops": 2e12, "calls": 200, "seconds": 2.0}, {"flops": 2e11, "calls": 200, "seconds": 0.1}]
    got = calibration.solve(rows, ("flops", "calls", "one"))
    assert min(got.values()) >= 0 and got["flops"] > 0


def test_a_mask_free_batch_runs_sdpas_causal_kernel_a_padded_one_its_mask(cli, tiny_model, tmp_path, monkeypatch):
    """timing.work leaves out the masked half of attention for a batch without padding (packed, or one sequence)
    and counts the square for a padded one: what the model xtuner builds (SupervisedFinetune, its SDPA choice)
    asks torch for, recorded at torch's scaled_dot_product_attention."""
    import torch
    from mmengine.config import Config

    from xtuner_recipes import calibrate, calibrate_probes

    config = _config(cli, tiny_model, tmp_path, "--set=~model.llm.quantization_config")
    seen = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording(*args, **kwargs):
        seen.append((bool(kwargs.get("is_causal")), kwargs.get("attn_mask") is not None))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    with calibrate_probes.restored():
        model, _ = calibrate._build(Config.fromfile(str(config)), tiny_model, "cpu", [])
        ids = torch.randint(3, 100, (2, 24))
        with torch.no_grad():
            for mask in (torch.ones_like(ids), torch.cat([torch.ones(2, 20), torch.zeros(2, 4)], 1).long()):
                seen.clear()
                model.llm(input_ids=ids, attention_mask=mask)
                assert seen and len(set(seen)) == 1  # every layer alike
                if mask.all():
                    assert seen[0] == (True, False)  # packed batch: no mask, the causal kernel
                else:
                    assert seen[0] == (False, True)  # padded batch: its mask, the whole square


def test_a_shipped_config_naming_a_hub_model_is_refused_with_the_setting(cli, xtuner_configs, tmp_path, cache):
    """xtuner's own configs name the model on the hub (nothing downloaded here): calibrate needs its config.json."""
    shipped = next(p for p in xtuner_configs if p.name == "internlm_chat_7b_qlora_oasst1_e3.py")
    result = cli("calibrate", shipped, "--scratch", tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "model.llm.pretrained_model_name_or_path ('internlm/internlm-chat-7b')" in result.stderr
    assert not cache.exists()
