#!/usr/bin/env bash
# On the H200, with the wheels of .whl/ installed to /tmp/site (benchmarks/gpu/README.md): `smoke --device
# cuda --deepspeed PRESET` (default deepspeed_zero2) on a tiny random Llama-shaped model, QLoRA as `gen
# medqa` writes it: train under DeepSpeed, pth_to_hf of its checkpoint, merge, chat. Lands in $OUT.
set -uo pipefail
out=${OUT:?}
preset=${1:-deepspeed_zero2}
work=/tmp/smoke-deepspeed
rm -rf "$work" && mkdir -p "$work"
python3 -c "import sys; sys.path.insert(0, 'tests'); from pathlib import Path; from tiny_model import build_tiny_model; \
build_tiny_model(Path('$work/model'))"
for i in $(seq 200); do cat tests/fixtures/data/medqa_us.jsonl; done > "$work/medqa.jsonl"
python3 -m xtuner_recipes gen medqa --model "$work/model" --data "$work/medqa.jsonl" -o "$work/medqa.py"
python3 -m xtuner_recipes smoke "$work/medqa.py" --device cuda --deepspeed "$preset" --json \
    > "$out/smoke-$preset.json" 2> "$out/smoke-$preset.err"
echo "smoke --device cuda --deepspeed $preset: exit $?"
tail -c 3000 "$out/smoke-$preset.err"
