"""Measure one mixture-of-experts model on the H200 (issue #26): peak GPU memory and host RSS of configs `gen`
writes, on a random model of OLMoE-1B-7B's shape (transformers' ``OlmoeForCausalLM``: 64 experts, 8 a token,
6.9B parameters), 4-bit, against validate's estimates committed before the run.

    python benchmarks/gpu/h200_moe.py --estimate-only --out benchmarks/results   # here, first: commit the file
    python benchmarks/gpu/h200_moe.py --out $OUT                                 # on the H200 (README.md there)

The runs are h200_memory.py's (xtuner's own train script, 20 iterations, the peaks recorded by the training
process); rows go to OUT/h200-moe.json, the estimates to OUT/h200-moe-estimate.json.
"""

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

WORK = Path(os.environ.get("H200_WORK", "/tmp/h200"))
# The shape to run: OLMoE-1B-7B's (the first check), or Qwen1.5-MoE-A2.7B's (shared experts; the second, unseen
# shape after the first missed the host memory): H200_MOE=qwen2_moe.
KIND = os.environ.get("H200_MOE", "olmoe")
NAMES = {"olmoe": ("olmoe-1b-7b-shape", "OLMoE-1B-7B shape", ""),
         "qwen2_moe": ("qwen1.5-moe-a2.7b-shape", "Qwen1.5-MoE-A2.7B shape", "-qwen")}
os.environ.setdefault("H200_MODEL", str(WORK / NAMES[KIND][0]))
LABEL, SUFFIX = NAMES[KIND][1:]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import h200_memory as mem  # noqa: E402 - after H200_MODEL is set: the runs use this model

# Their config.json (allenai/OLMoE-1B-7B-0924, Qwen/Qwen1.5-MoE-A2.7B-Chat), the shape fields.
SHAPES = {
    "olmoe": dict(hidden_size=2048, intermediate_size=1024, num_hidden_layers=16, num_attention_heads=16,
                  num_key_value_heads=16, vocab_size=50304, num_experts=64, num_experts_per_tok=8,
                  max_position_embeddings=4096, tie_word_embeddings=False),
    "qwen2_moe": dict(hidden_size=2048, intermediate_size=5632, moe_intermediate_size=1408,
                      shared_expert_intermediate_size=5632, num_hidden_layers=24, num_attention_heads=16,
                      num_key_value_heads=16, vocab_size=151936, num_experts=60, num_experts_per_tok=4,
                      max_position_embeddings=8192, tie_word_embeddings=False),
}
SHAPE = SHAPES[KIND]
RUNS = {"olmoe": [("oasst1", 1024, "nf4"), ("oasst1", 2048, "nf4"), ("medqa", 1024, "nf4")],
        "qwen2_moe": [("oasst1", 1024, "nf4")]}[KIND]


def make_model(weights: bool = True) -> None:
    mem.make_model_of(mem.MODEL, dict(model_type=KIND, **SHAPE), weights=weights)


def estimates(out: Path) -> None:
    make_model(weights=False)
    rows = []
    for recipe, length, quant in RUNS:
        estimate, run, host = mem.estimate_for(mem.make_config(recipe, length, quant))
        rows.append({"model": LABEL, "recipe": recipe, "max_length": length, "quantization": quant,
                     "lora_r": run.lora_r, "date": datetime.date.today().isoformat(),
                     "estimated_gib": estimate.peak_gib, "estimated_allocated_gib": estimate.peak_allocated_gib,
                     "estimate_parts_gib": estimate.parts, "estimated_host_gib": host})
    (out / f"h200-moe{SUFFIX}-estimate.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(json.dumps(rows, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--estimate-only", action="store_true", help="no GPU: the estimates, to commit first")
    parser.add_argument("--only", nargs="*", help="recipe:length:quantization of the runs to make")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    if args.estimate_only:
        estimates(args.out)
        return
    make_model()
    path = args.out / f"h200-moe{SUFFIX}.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    for recipe, length, quant in RUNS:
        if args.only and f"{recipe}:{length}:{quant}" not in args.only:
            continue
        start = time.time()
        row = {"model": LABEL, **mem.measure(recipe, length, quant, args.out)}
        rows.append(row)
        path.write_text(json.dumps(rows, indent=1) + "\n")
        print(f"{recipe}:{length}:{quant}: estimate {row['estimated_gib']} GiB, measured {row.get('measured_peak_gib')} "
              f"GiB ({row.get('error_pct')}%); host {row.get('estimated_host_gib')} vs {row.get('measured_host_gib')} "
              f"GiB ({row.get('host_error_pct')}%) {row.get('error', '')} [{time.time() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
