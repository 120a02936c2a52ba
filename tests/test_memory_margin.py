""""Fits" keeps a margin over the GPU estimate, and the margin covers every measured peak: each H200 row in
benchmarks/results/ (in-sample or not, with the code as it is now) and issue #26's held-out row. A regression
pin on the measured rows: a change to the estimate that makes one of them slip past the margin fails here."""

import json
from pathlib import Path

import pytest

from xtuner_recipes.validate.estimate.gpu import FIT_MARGIN, Arch, Run, estimate, fit_verdict
from xtuner_recipes.xtuner_info import deepspeed_zero

RESULTS = Path(__file__).parents[1] / "benchmarks" / "results"
SEVEN_B = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)
DEEPSPEED = ["h200-deepspeed.json", "h200-deepspeed-2gpu.json", "h200-deepspeed-check.json",
             "h200-deepspeed-check-zero3.json", "h200-deepspeed-check-zero2.json"]
# Issue #26: LoRA r=16, batch 2, 1024 tokens on the 7B shape, packed, measured 12.85 GiB (run by the CEO; not
# in benchmarks/results/).
HELD_OUT = [(Run(max_length=1024, batch_size=2, lora_r=16), 12.85)]


def measured_rows() -> list[tuple[str, float, float]]:
    """(what, the estimate, the measured reserved peak) for every GPU peak measured on the H200: the estimate
    as the code makes it now, but for the two unpacked rows, whose estimate (at the data's longest sample) was
    recorded by validate beside them."""
    rows = []
    for row in json.loads((RESULTS / "h200-memory.json").read_text()):
        run = Run(max_length=row["max_length"], batch_size=row["batch_size"], quantization=row["quantization"],
                  lora_r=row["lora_r"])
        rows.append((f"{row['recipe']} {row['max_length']} {row['quantization']}", estimate(SEVEN_B, run).peak_gib,
                     row["measured_peak_gib"]))
    for name in DEEPSPEED:
        for row in json.loads((RESULTS / name).read_text()):
            stage, *offload = deepspeed_zero(row["deepspeed"])
            run = Run(max_length=row["max_length"], zero_stage=stage, gpus=row.get("gpus") or 1,
                      quantization=row["quantization"], offload=tuple(offload))
            rows.append((f"{name} {row['max_length']} {row['deepspeed']} x{row.get('gpus') or 1}",
                         estimate(SEVEN_B, run).peak_gib, row["measured_peak_gib"]))
    # Unpacked MS-Agent with expandable segments (the default allocator's 52.8 GiB is G003's to warn of)
    for name in ("h200-unpacked-expandable.json", "h200-unpacked-capped32-expandable.json"):
        for row in json.loads((RESULTS / name).read_text()):
            rows.append((name, row["estimated_peak_gib"], row["measured_peak_gib"]))
    rows += [(f"held out {run}", estimate(SEVEN_B, run).peak_gib, measured) for run, measured in HELD_OUT]
    # Issue #26's mixture of experts, OLMoE-1B-7B's shape counted on the meta device (an H100 ran it).
    for row in json.loads((RESULTS / "h200-moe.json").read_text()):
        run = Run(max_length=row["max_length"], quantization=row["quantization"], lora_r=row["lora_r"])
        rows.append((f"{row['model']} {row['recipe']} {row['max_length']}", estimate(olmoe(), run).peak_gib,
                     row["measured_peak_gib"]))
    # The second MoE shape, Qwen1.5-MoE-A2.7B's (shared experts), with expandable segments: the launch `plan` prints for
    # a mixture of experts (its default-allocator row, 34.1 GiB reserved for 28.3 allocated, is G003's to warn of)
    for row in json.loads((RESULTS / "h200-moe-qwen.json").read_text()):
        if row.get("alloc_conf") == "expandable_segments:True":
            run = Run(max_length=row["max_length"], quantization=row["quantization"], lora_r=row["lora_r"])
            rows.append((f"{row['model']} {row['recipe']} {row['max_length']}", estimate(qwen_moe(), run).peak_gib,
                         row["measured_peak_gib"]))
    return rows


def qwen_moe():
    from xtuner_recipes.validate.estimate.count import arch_of

    return arch_of(dict(model_type="qwen2_moe", hidden_size=2048, intermediate_size=5632, moe_intermediate_size=1408,
                        shared_expert_intermediate_size=5632, num_hidden_layers=24, num_attention_heads=16,
                        num_key_value_heads=16, vocab_size=151936, num_experts=60, num_experts_per_tok=4,
                        max_position_embeddings=8192, tie_word_embeddings=False))[0]


def olmoe():
    from test_arch_count import OLMOE

    from xtuner_recipes.validate.estimate.count import arch_of

    return arch_of(OLMOE)[0]


def test_the_margin_covers_every_measured_peak_and_no_more_than_needed():
    rows = measured_rows()
    assert len(rows) == 11 + 15 + 2 + 1 + 3 + 1
    needed = max(measured / estimated - 1 for _, estimated, measured in rows)
    worst = max(rows, key=lambda row: row[2] / row[1])
    assert needed <= FIT_MARGIN < needed + 0.01, (needed, worst)
    for what, estimated, measured in rows:
        card = estimated * (1 + FIT_MARGIN)  # the smallest card the verdict calls "fits"
        assert measured <= card, what


def test_the_verdict_says_fits_tight_or_does_not_fit():
    assert fit_verdict(10.0, 10.0 * (1 + FIT_MARGIN)) == ("fits", 0.8)
    assert fit_verdict(10.0, 10.5)[0] == "tight" and fit_verdict(10.0, 10.0)[0] == "tight"
    assert fit_verdict(10.0, 9.5) == ("does not fit", 0.5)


@pytest.mark.parametrize("card, severity", [(24, None), (15, "warning"), (12, "error")])
def test_g001_follows_the_verdict(card, severity):
    from xtuner_recipes.validate.estimate.check import gpu_findings

    config = {"model_type": "internlm", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "intermediate_size": 11008,
              "vocab_size": 103168}
    stats, findings = gpu_findings(config, Run(max_length=2048), gpu_mem=card)
    assert stats["estimated_peak_gib"] == pytest.approx(14.29, abs=0.01)
    assert [f.severity for f in findings if f.code == "G001"] == ([severity] if severity else [])


def test_the_readme_states_the_deepspeed_errors_the_rows_give():
    """README's DeepSpeed accuracy, recomputed from the raw rows: first try (the estimate committed before each
    run) and now (the code as it is), and the margin it states."""
    import re

    rows = [row for name in DEEPSPEED for row in json.loads((RESULTS / name).read_text())]
    first = [(row["estimated_gib"] - row["measured_peak_gib"]) / row["measured_peak_gib"] for row in rows]
    now = []
    for row in rows:
        stage, *offload = deepspeed_zero(row["deepspeed"])
        run = Run(max_length=row["max_length"], zero_stage=stage, gpus=row.get("gpus") or 1,
                  quantization=row["quantization"], offload=tuple(offload))
        now.append((estimate(SEVEN_B, run).peak_gib - row["measured_peak_gib"]) / row["measured_peak_gib"])
    readme = re.sub(r"\s+", " ", (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8"))

    def pct(value):
        return f"{'−' if value < 0 else '+'}{abs(value) * 100:.1f}%"

    assert f"{len(rows)} GPU peaks" in readme
    assert f"{sum(abs(e) <= 0.10 for e in first)} of {len(rows)} were within 10%" in readme
    assert all(pct(e) in readme for e in first if abs(e) > 0.10)  # each first-try miss is named
    assert f"With the code as it is now, {pct(min(now))} to {pct(max(now))}" in readme
    assert f"margin of **{FIT_MARGIN:.0%}**" in readme


def test_the_moe_rows_first_try_and_now():
    """A regression pin on issue #26's MoE runs. GPU: the estimates committed before the runs were within 4%
    (allocated, on the Qwen-MoE shape whose run was cut before its reserved peak: +0.8%). Host: the first try
    missed by -64% (the checkpoint save holds the optimizer's states twice); the term that fixed it was found on
    those three rows (in-sample), and the Qwen-MoE shape's host RSS was not measured."""
    from xtuner_recipes.validate.estimate.host import checkpoint_save, peaks

    committed = {(r["recipe"], r["max_length"]): r for r in json.loads((RESULTS / "h200-moe-estimate.json").read_text())}
    for row in json.loads((RESULTS / "h200-moe.json").read_text()):
        first = committed[(row["recipe"], row["max_length"])]
        assert abs(first["estimated_gib"] / row["measured_peak_gib"] - 1) < 0.04
        assert first["estimated_host_gib"] / row["measured_host_gib"] - 1 < -0.6
        run = Run(max_length=row["max_length"], quantization=row["quantization"], lora_r=row["lora_r"])
        now = peaks(olmoe(), run.quantization, shard_bytes=4.65 * 1024 ** 3, saved_bytes=checkpoint_save(olmoe(), run))
        assert abs(now["train"] / row["measured_host_gib"] - 1) < 0.05
    qwen = json.loads((RESULTS / "h200-moe-qwen.json").read_text())[0]
    assert qwen["measured_peak_gib"] is None and abs(qwen["estimated_allocated_gib"] / qwen["measured_allocated_gib"] - 1) < 0.01


def test_the_readme_states_the_moe_errors_the_rows_give():
    """README's MoE sentence, recomputed from the raw rows: GPU first try, host first try, host now."""
    import re

    from xtuner_recipes.validate.estimate.host import checkpoint_save, peaks

    committed = {(r["recipe"], r["max_length"]): r for r in json.loads((RESULTS / "h200-moe-estimate.json").read_text())}
    rows = json.loads((RESULTS / "h200-moe.json").read_text())

    def pct(value):
        return f"{100 * value:+.1f}%".replace("-", "−")

    gpu = [committed[(r["recipe"], r["max_length"])]["estimated_gib"] / r["measured_peak_gib"] - 1 for r in rows]
    host_first = [committed[(r["recipe"], r["max_length"])]["estimated_host_gib"] / r["measured_host_gib"] - 1
                  for r in rows]
    now = []
    for r in rows:
        run = Run(max_length=r["max_length"], quantization=r["quantization"], lora_r=r["lora_r"])
        found = peaks(olmoe(), run.quantization, shard_bytes=4.65 * 1024 ** 3, saved_bytes=checkpoint_save(olmoe(), run))
        now.append(found["train"] / r["measured_host_gib"] - 1)
    readme = re.sub(r"\s+", " ", (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8"))
    assert f"{pct(gpu[0])}, {pct(gpu[1])} and {pct(gpu[2])} off" in readme
    assert f"missed by {pct(min(host_first))[:-3]}%" in readme
    assert f"{pct(min(now))} to {pct(max(now))} on those same rows, in-sample" in readme


def test_the_readme_states_the_second_moe_shapes_errors_the_rows_give():
    """README's sentence on the Qwen1.5-MoE shape, recomputed from its rows against the estimate committed first."""
    import re

    (committed,) = json.loads((RESULTS / "h200-moe-qwen-estimate.json").read_text())
    rows = {row.get("alloc_conf"): row for row in json.loads((RESULTS / "h200-moe-qwen.json").read_text())
            if row.get("measured_peak_gib")}

    def pct(estimated, measured):
        return f"{100 * (estimated / measured - 1):+.1f}%".replace("-", "−")

    default, expandable = rows[None], rows["expandable_segments:True"]
    readme = re.sub(r"\s+", " ", (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8"))
    host = [pct(committed["estimated_host_gib"], row["measured_host_gib"]) for row in (default, expandable)]
    assert f"host {host[0]} (default allocator) and {host[1]} (expandable segments)" in readme
    assert f"GPU {pct(committed['estimated_gib'], default['measured_peak_gib'])} with PyTorch's default" in readme
    assert (f"({default['measured_peak_gib']:.1f} GiB reserved for {default['measured_allocated_gib']:.1f} "
            "allocated") in readme
    assert f"and {pct(committed['estimated_gib'], expandable['measured_peak_gib'])} with expandable segments" in readme
