#!/usr/bin/env bash
# Fetch, on a machine with pip access, the wheels the H200 run needs into .whl/ (git-ignored):
# xtuner 0.2.0 and its pins that the device image lacks, for its Python 3.12. bitsandbytes is
# repacked to keep only its CPU and CUDA 13 libraries (43 MB → ~4 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for pkg in xtuner==0.2.0 mmengine==0.10.6 transformers==4.48.0 tokenizers==0.21.0 huggingface_hub==0.27.1 \
           datasets==3.2.0 dill==0.3.8 multiprocess==0.70.16 fsspec==2024.9.0 peft==0.14.0 addict yapf \
           platformdirs termcolor loguru bitsandbytes==0.50.2 \
           libcst==1.5.1 pyyaml jsonschema attrs jsonschema-specifications referencing rpds-py typing-extensions; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "$pkg"
done
wheel=$(ls .whl/bitsandbytes-0.50.2-*.whl)
work=$(mktemp -d)
(cd "$work" && python3 -m zipfile -e "$OLDPWD/$wheel" . \
  && find bitsandbytes -name 'libbitsandbytes_*.so' ! -name '*_cpu.so' ! -name '*_cuda130.so' -delete \
  && grep -v -E 'libbitsandbytes_(cuda1[12]|cuda132|rocm|xpu)' bitsandbytes-0.50.2.dist-info/RECORD > RECORD.new \
  && mv RECORD.new bitsandbytes-0.50.2.dist-info/RECORD \
  && rm -f "$OLDPWD/$wheel" && python3 -m zipfile -c "$OLDPWD/$wheel" bitsandbytes bitsandbytes-0.50.2.dist-info)
rm -rf "$work"
du -sh .whl
