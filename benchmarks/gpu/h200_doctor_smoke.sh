#!/usr/bin/env bash
# On the H200, with the wheels of .whl/ installed to /tmp/site (benchmarks/gpu/README.md): what `doctor`
# reports of the device's stack, with and without a QLoRA config, and a QLoRA `smoke --device cuda`
# (4-bit quantization kept) on a tiny random Llama-shaped model. Everything lands in $OUT.
set -uo pipefail
out=${OUT:?}
work=/tmp/doctor-smoke
rm -rf "$work" && mkdir -p "$work"
python3 -c "import sys; sys.path.insert(0, 'tests'); from pathlib import Path; from tiny_model import build_tiny_model; \
build_tiny_model(Path('$work/model'))"
# 400 rows (the fixture's 4- and 5-option questions, repeated): enough samples for a warmup of whole iterations
for i in $(seq 200); do cat tests/fixtures/data/medqa_us.jsonl; done > "$work/medqa.jsonl"
python3 -m xtuner_recipes gen medqa --model "$work/model" --data "$work/medqa.jsonl" -o "$work/medqa.py"
python3 -m xtuner_recipes doctor --json > "$out/doctor.json"; echo "doctor: exit $?"
python3 -m xtuner_recipes doctor "$work/medqa.py" > "$out/doctor-config.txt"; echo "doctor CONFIG: exit $?"
cat "$out/doctor-config.txt"
python3 -m xtuner_recipes smoke "$work/medqa.py" --device cuda --json > "$out/smoke.json" 2> "$out/smoke.err"
echo "smoke --device cuda: exit $?"
tail -c 3000 "$out/smoke.err"
