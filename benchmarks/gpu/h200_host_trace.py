"""Where a 4-bit model's host memory goes while it loads (issue #26): VmRSS, its anonymous and file-backed parts
and the peak (VmHWM), after each step xtuner takes: ``from_pretrained`` with its BitsAndBytesConfig, peft's
``prepare_model_for_kbit_training``, ``get_peft_model`` on every linear. For the OLMoE and Llama-7B shapes of
h200_moe.py and h200_memory.py (made first when missing). One model a process:

    python benchmarks/gpu/h200_host_trace.py olmoe|llama --make   # once
    python benchmarks/gpu/h200_host_trace.py olmoe|llama >> $OUT/h200-host-trace.json
"""

import json
import os
import sys
import time
from pathlib import Path

WORK = Path(os.environ.get("H200_WORK", "/tmp/h200"))


def status() -> dict:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = round(int(value.split()[0]) / 1024 ** 2, 2)  # kB -> GiB
    return fields


def main() -> None:
    which = sys.argv[1]
    if which == "olmoe":
        import h200_moe as maker
    else:
        import h200_memory as maker
    if sys.argv[2:] == ["--make"]:  # in a process of its own: making the model would be the traced peak
        maker.make_model()
        return
    model_dir = maker.mem.MODEL if which == "olmoe" else maker.MODEL
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    from xtuner.model.utils import find_all_linear_names

    steps = [("start", status(), 0.0)]
    start = time.time()
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_compute_dtype=torch.float16, llm_int8_threshold=6.0)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), quantization_config=quantization,
                                                 torch_dtype=torch.float16)
    steps.append(("from_pretrained", status(), time.time() - start))
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    steps.append(("prepare_model_for_kbit_training", status(), time.time() - start))
    model = get_peft_model(model, LoraConfig(r=64, lora_alpha=16, lora_dropout=0.1,
                                             target_modules=find_all_linear_names(model), task_type="CAUSAL_LM"))
    steps.append(("get_peft_model", status(), time.time() - start))
    shards = sorted(p.stat().st_size for p in Path(model_dir).glob("*.safetensors"))
    print(json.dumps({"model": which, "shards_gib": [round(s / 1024 ** 3, 2) for s in shards],
                      "steps": [{"step": s, "seconds": round(t, 1), **v} for s, v, t in steps]}), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
