"""``xtuner-recipes calibrate CONFIG``: measure what the time estimate needs on this machine's card, in about a
minute, and keep it (``validate.estimate.calibration``).

1. Copies of the config's model with one and with two transformer layers (``--layers``: other depths) and random
   weights (its own ``config.json``, remote code included) are written to a scratch folder, each built the way
   ``xtuner train`` builds the config's model: the config's ``model`` dict (xtuner's ``SupervisedFinetune``: the
   quantization, ``prepare_model_for_kbit_training``, activation checkpointing, the LoRA) and its
   ``optim_wrapper`` (AMP and all).
2. Training steps at two sizes — the config's batch of ``max_length`` tokens, and one short sequence — each timed
   as the median of several after a warm-up. The time model says an iteration is ``FLOPs / throughput +
   calls x per-call cost + dequantizing bytes / bandwidth``; here it gains what an iteration costs whatever its
   layers (the loss, the optimizer wrapper, the step's Python), which a two-layer model would otherwise charge to
   its few calls. Four times, three constants: least squares (``calibration.solve``; FLOPs and calls counted
   from each copy as the estimate counts them).
3. A decode step of each copy (one token, cache on): a call's cost and a token's, as EvaluateChatHook's
   generations pay them; the card's memory bandwidth (a copy on the device); the scratch disk's write speed (a
   file written and synced); the host's pace issuing small ops (``machine.host_op_us``) and its round trip to the
   device (``machine.host_sync_us``), kept for comparing hosts.

On a machine without a GPU only a 16-bit config can be measured (bitsandbytes' 4-bit needs CUDA); the "card" is
then this machine's CPU, which ``validate --gpu cpu`` names.
"""

import json
import platform
import shutil
import statistics
import tempfile
from pathlib import Path

from xtuner_recipes import calibrate_probes as probes
from xtuner_recipes.errors import RecipeError
from xtuner_recipes.validate.estimate import calibration
from xtuner_recipes.validate.estimate.calibration import CPU_CARD

LAYERS = (1, 2)  # two copies: what a layer costs apart from what an iteration costs whatever its layers
SHORT_TOKENS = 64


def _say(progress, text: str) -> None:
    if progress:
        progress(text)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _card_spec(device: str) -> dict:
    import torch

    from xtuner_recipes.validate.estimate import cards

    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        table = cards.find(name)
        props = torch.cuda.get_device_properties(0)
        return {"name": name, "tflops": table.tflops if table else None, "memory_gb": round(props.total_memory / 1e9),
                "bf16": bool(torch.cuda.is_bf16_supported())}
    import psutil

    return {"name": CPU_CARD, "tflops": None, "memory_gb": round(psutil.virtual_memory().total / 1e9), "bf16": False,
            "processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}


def _small_copy(model_dir: Path, into: Path, layers: int, device: str) -> dict:
    """A random model of ``model_dir``'s architecture with ``layers`` layers in ``into``; its config.json dict."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    for path in model_dir.iterdir():  # remote code and tokenizer files; not the weights
        if path.is_file() and path.suffix in (".py", ".json", ".model", ".txt", ".tiktoken") \
                and not path.name.endswith(".index.json"):
            shutil.copy2(path, into / path.name)
    fields = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        if key in fields:
            fields[key] = layers
    (into / "config.json").write_text(json.dumps(fields, indent=1), encoding="utf-8")
    config = AutoConfig.from_pretrained(into, trust_remote_code=True)
    dtype = torch.float16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, torch_dtype=dtype, trust_remote_code=True)
    model.save_pretrained(into, safe_serialization=True)
    del model
    return fields


def _build(cfg, model_dir: Path, device: str, notes: list[str]):
    """The config's model (on the copy) and optimizer wrapper, as mmengine's Runner builds them."""
    from mmengine.optim import build_optim_wrapper

    from xtuner_recipes.compat.mmengine import settings
    from xtuner_recipes.smoke.adapt import cpu_optim_wrapper, patch_runtime

    model_cfg = cfg.model.copy()
    model_cfg.llm.pretrained_model_name_or_path = str(model_dir)
    kind = model_cfg.pop("type")
    if device == "cpu":
        notes += patch_runtime(device)  # undone by measure() when it ends
        notes += cpu_optim_wrapper(settings(cfg)["optim_wrapper"])  # raw: lazy types stay unbuilt
    wrapper_cfg = cfg.optim_wrapper
    model = kind(**model_cfg).to(device)
    model.train()
    wrapper = build_optim_wrapper(model, wrapper_cfg)
    wrapper.initialize_count_status(model, 0, 1 << 30)
    return model, wrapper


def _step(model, wrapper, ids):
    def run():
        data = {"input_ids": ids, "labels": ids, "attention_mask": ids.new_ones(ids.shape)}
        model.train_step({"data": data, "data_samples": None}, wrapper)
    return run


def _decode(model, device: str, repeats: int) -> float:
    """Seconds of one generated token (cache on), the LoRA model in eval mode as EvaluateChatHook runs it."""
    import torch

    llm = model.llm
    llm.eval()
    was = llm.config.use_cache
    llm.config.use_cache = True
    prompt = torch.randint(3, 100, (1, 16), device=device)
    with torch.no_grad():
        past = llm(input_ids=prompt, use_cache=True).past_key_values
        token = prompt[:, -1:]
        times = probes.median_seconds(lambda: llm(input_ids=token, past_key_values=past, use_cache=True),
                                      probes.REPEATS[device], device)
    llm.config.use_cache = was
    llm.train()
    return statistics.median(times)


def measure(config: Path, *, scratch: Path, progress=None, loaded=None, layers: tuple[int, int] = LAYERS) -> dict:
    """Calibrate on ``config``'s model shape; the cache entry (not yet saved). ``loaded``: the config as mmengine
    already loaded it (its model is pointed at the copies); ``layers``: the two copies' depths (deeper copies keep
    a fast card busy longer than its host's launches)."""
    import datetime

    from mmengine.config import Config

    from xtuner_recipes.validate.estimate import timing
    from xtuner_recipes.validate.estimate.gpu import Run
    from xtuner_recipes.validate.inputs import Launch, Settings

    device = _device()
    cfg = loaded if loaded is not None else Config.fromfile(str(config))
    found = Settings.parse(cfg, None)
    run = Run.of(found, Launch())
    source = found.model_path
    model_dir = Path(source) if isinstance(source, str) else None
    if model_dir is None or not (model_dir / "config.json").is_file():
        raise RecipeError(f"{config}: model.llm.pretrained_model_name_or_path ({source!r}) is not a local model "
                          "folder with a config.json; calibrate copies the model's shape from it")
    if run.quantization != "none" and device != "cuda":
        raise RecipeError(f"{config}: the config quantizes the model ({run.quantization}), and bitsandbytes' "
                          "quantization needs a CUDA GPU, which this machine lacks: run calibrate on the training "
                          "machine, or calibrate a 16-bit config here")
    if run.lora_r is None:
        raise RecipeError(f"{config}: calibrate measures LoRA training (the time model's domain); this config has "
                          "no model.lora")
    if run.max_length < 1:
        raise RecipeError(f"{config}: max_length is not a whole number above 0")
    spec = _card_spec(device)
    spec["bandwidth_gbs"] = probes.bandwidth_gbs(device)
    spec["host_op_us"] = probes.host_op_us(device)
    spec["host_sync_us"] = probes.host_sync_us(device)
    base = timing.load_model() or {}
    passes = 3 if run.activation_checkpointing else 2
    quantized = run.quantization in ("nf4", "int8")
    per_param = {"nf4": 0.5, "int8": 1.0}.get(run.quantization, 2.0)
    train_rows, decode_rows, notes = [], [], []
    with probes.restored():
        for depth in layers:
            arch = _measure_layers(cfg, model_dir, depth, run, device, scratch, progress, notes if depth == layers[0]
                                   else [], train_rows, decode_rows)
            bandwidth = spec["bandwidth_gbs"] * 1e9
            for row in train_rows[-2:]:  # the parts the time model does not fit: dequantizing, experts' calls
                row["known_s"] = ((arch.linear_params * passes * timing.DEQUANT_BYTES / bandwidth if quantized else 0.0)
                                  + row["expert_calls"] * base.get("seconds_per_expert_call", 0.0))
            decode_rows[-1]["known_s"] = arch.total_params * per_param / bandwidth
    _say(progress, "measuring the disk's write speed")
    disk = probes.write_gbs(scratch, device)
    fitted = calibration.solve(train_rows, ("flops", "calls", "one"))
    decoding = calibration.solve(decode_rows, ("calls", "one"))
    if fitted["flops"] <= 0:
        raise RecipeError(f"{config}: the timed steps did not take longer with more work (times: "
                          f"{[round(row['seconds'], 4) for row in train_rows]} s): the machine was too busy to measure")
    throughput = 1 / fitted["flops"]
    if spec["tflops"] is None:  # a card outside the table: its own measured throughput stands for its peak
        spec["tflops"] = float(f"{throughput / 1e12:.4g}")
    versions = {name: probes.version(name) for name in ("torch", "transformers", "peft", "bitsandbytes", "xtuner")}
    return {"card": {k: spec[k] for k in ("name", "tflops", "bandwidth_gbs", "memory_gb", "bf16")},
            "machine": {k: v for k, v in spec.items() if k in ("processor", "threads", "host_op_us", "host_sync_us")},
            "write_gbs": disk, "date": datetime.date.today().isoformat(), "versions": versions, "adaptations": notes,
            "quantization": {run.quantization: {
                "flops_per_s": throughput, "seconds_per_call": fitted["calls"],
                "seconds_per_iteration": fitted["one"], "seconds_per_decode_call": decoding["calls"],
                "seconds_per_decode_token": decoding["one"], "rows": train_rows, "decode_rows": decode_rows,
                "config": str(Path(config).resolve()), "model": str(model_dir.resolve()), "lora_r": run.lora_r}}}


def _measure_layers(cfg, model_dir: Path, layers: int, run, device: str, scratch: Path, progress, notes: list,
                    train_rows: list, decode_rows: list):
    """Build a ``layers``-layer copy of the config's model and time it: two training sizes, one decode step."""
    import torch

    from xtuner_recipes.validate.estimate import count, timing

    repeats = probes.REPEATS[device]
    with tempfile.TemporaryDirectory(prefix="xtuner-recipes-calibrate-", dir=scratch) as folder:
        _say(progress, f"writing a {layers}-layer random copy of {model_dir.name} to {folder}")
        small = _small_copy(model_dir, Path(folder), layers, device)
        arch, why = count.arch_of(small)
        if arch is None:
            raise RecipeError(f"the model's shape cannot be counted: {why}")
        _say(progress, "building the config's model on it (quantization, LoRA, optimizer wrapper)")
        model, wrapper = _build(cfg, Path(folder), device, notes)
        for sequences, length in ((run.batch_size, run.max_length), (1, min(SHORT_TOKENS, run.max_length))):
            _say(progress, f"timing {repeats} training steps of {sequences} x {length} tokens, {layers} layer(s)")
            ids = torch.randint(3, min(arch.vocab, 30000), (sequences, length), device=device)
            times = probes.median_seconds(_step(model, wrapper, ids), repeats, device)
            plain, experts = timing.calls(arch, run, sequences=sequences, length=length)
            train_rows.append({"layers": layers, "sequences": sequences, "length": length,
                               "seconds": statistics.median(times), "times": [round(t, 5) for t in times],
                               "calls": plain, "expert_calls": experts,
                               # no padding here: SDPA's causal kernel, as timing counts a mask-free batch
                               "flops": timing.work(arch, run, sequences=sequences, length=length, causal=True)})
        _say(progress, f"timing a decode step, {layers} layer(s)")
        decode_rows.append({"layers": layers, "seconds": _decode(model, device, repeats),
                            "calls": sum(group.count for group in arch.all_linears())})
        del model, wrapper
        if device == "cuda":
            torch.cuda.empty_cache()
    return arch
