"""Measure peak GPU memory of configs made by `gen` on a random internlm-chat-7b-shaped model.

Run on the lent H200 (see benchmarks/gpu/README.md):

    python benchmarks/gpu/h200_memory.py --out $OUT [--only oasst1]

For each run: `gen` writes the config (packing on, batch 1), xtuner's own train script runs
it for 20 iterations (`smoke`'s adaptation for the GPU: only max_iters, logging every
iteration and short chat samples), and the training process records
`torch.cuda.max_memory_reserved` and `max_memory_allocated`. The estimate comes from
`xtuner_recipes.validate.estimate.gpu` on the same config. Results append to OUT/h200-memory.json.
"""

import argparse
import dataclasses
import datetime
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from xtuner_recipes.validate.estimate.gpu import ALLOCATOR_OVERHEAD  # noqa: E402 - after the path is set

WORK = Path(os.environ.get("H200_WORK", "/tmp/h200"))
PINNED_TRANSFORMERS = "4.48.0"  # constraints/xtuner-0.2.0.txt; the device's wheels (fetch_wheels.sh)


def pinned() -> None:
    """Stop when the transformers imported is not the pinned one: on the device, the wheels were not carried."""
    import transformers

    if transformers.__version__ != PINNED_TRANSFORMERS and os.environ.get("H200_ANY_TRANSFORMERS") != "1":
        raise SystemExit(f"transformers {transformers.__version__} is imported, not the pinned {PINNED_TRANSFORMERS}: "
                         "carry .whl and install it first (benchmarks/gpu/README.md), or set H200_ANY_TRANSFORMERS=1")
MODEL = Path(os.environ.get("H200_MODEL") or WORK / "internlm-chat-7b-shape")  # h200_moe.py sets another
STEPS = int(os.environ.get("H200_STEPS", 20))  # fewer for a slow model: the peaks settle by the third
# internlm-chat-7b's shape; a Llama stand-in (no remote code, no weights to download).
SHAPE = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
             intermediate_size=11008, vocab_size=103168, max_position_embeddings=2048)
RUNS = [  # (recipe, max_length, quantization)
    ("oasst1", 512, "nf4"), ("oasst1", 1024, "nf4"), ("oasst1", 2048, "nf4"),
    ("oasst1", 512, "none"), ("oasst1", 1024, "none"), ("oasst1", 2048, "none"),
    ("medqa", 512, "nf4"), ("medqa", 1024, "nf4"), ("medqa", 2048, "nf4"),
    ("msagent", 512, "nf4"), ("msagent", 1024, "nf4"), ("msagent", 2048, "nf4"),
]
# Without packing xtuner pads a batch to its longest sample: the estimate is taken at the data's
# longest sample (issue #14), here ~330 tokens against max_length 2048, 8 samples a batch.
UNPACKED = [("msagent", 2048, "nf4", 8)]
# Under DeepSpeed (issue #17), one GPU, as the tutorial launches: `xtuner train CFG --deepspeed PRESET`.
DEEPSPEED = [("oasst1", 512, "nf4", "deepspeed_zero2"), ("oasst1", 2048, "nf4", "deepspeed_zero2"),
             ("oasst1", 512, "nf4", "deepspeed_zero3"), ("oasst1", 2048, "nf4", "deepspeed_zero3")]
# The same on several GPUs of one host (torchrun, as `NPROC_PER_NODE=N xtuner train` launches it).
DEEPSPEED_MULTI = [("oasst1", 2048, "nf4", "deepspeed_zero2"), ("oasst1", 2048, "nf4", "deepspeed_zero3")]
# The check of memory_deepspeed.py (built from the rows above): shapes it was not built from, 1 and 2 GPUs.
DEEPSPEED_CHECK = [("medqa", 1024, "nf4", "deepspeed_zero2", 1), ("oasst1", 1024, "nf4", "deepspeed_zero3", 1),
                   ("oasst1", 1024, "none", "deepspeed_zero2", 1), ("oasst1", 2048, "nf4", "deepspeed_zero3", 2),
                   ("medqa", 2048, "nf4", "deepspeed_zero2", 2)]
# Committed after the check above, before it ran (h200-deepspeed-check-host-estimate.json): an offload preset,
# and every check row's training host RSS (host_memory.py) beside its GPU estimate.
DEEPSPEED_CHECK_OFFLOAD = [("oasst1", 1024, "nf4", "deepspeed_zero2_offload", 1)]
# After that check missed ZeRO-3 on two GPUs (gathered weights) and ZeRO-3's host memory (the quantized
# model held on the CPU while it loads), memory_deepspeed.py and host_memory.py gained both; their check,
# committed before it ran (h200-deepspeed-check-zero3-estimate.json):
DEEPSPEED_CHECK_ZERO3 = [("medqa", 1024, "nf4", "deepspeed_zero3", 2), ("oasst1", 512, "nf4", "deepspeed_zero3", 2)]
# ZeRO-2 on two GPUs at the lengths not yet run there (h200-deepspeed-check-zero2-estimate.json).
DEEPSPEED_CHECK_ZERO2 = [("oasst1", 512, "nf4", "deepspeed_zero2", 2), ("medqa", 1024, "nf4", "deepspeed_zero2", 2)]
# `--check NAME`: the run set and its estimate file.
CHECKS = {"first": (DEEPSPEED_CHECK + DEEPSPEED_CHECK_OFFLOAD, "h200-deepspeed-check-host-estimate.json"),
          "zero3": (DEEPSPEED_CHECK_ZERO3, "h200-deepspeed-check-zero3-estimate.json"),
          "zero2": (DEEPSPEED_CHECK_ZERO2, "h200-deepspeed-check-zero2-estimate.json")}
WORDS = ("patient dose tablet fever infection pressure heart liver kidney therapy symptom daily weather city "
         "query model agent answer question because therefore however result value search tool call").split()


def text(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words))


def make_model_of(folder: Path, fields: dict, weights: bool = True) -> None:
    """A random model of ``fields`` (a config.json's shape, ``model_type`` included) in ``folder``, fp16, with
    this file's sentencepiece tokenizer; config.json and the tokenizer alone without ``weights``."""
    import shutil

    import sentencepiece as spm
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaTokenizer

    # A folder another transformers wrote (2026-12-07: a device call whose wheels had not been installed made the
    # Llama-2 shape with the machine's own, and the runs after it tokenized into 2- and 187-token samples) is made
    # again with this one.
    pinned()
    marker = folder / "made_with_transformers.txt"
    if (folder / "config.json").is_file() and (list(folder.glob("*.safetensors")) or not weights):
        if marker.is_file() and marker.read_text().strip() == transformers.__version__:
            return
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(transformers.__version__ + "\n")
    rng = random.Random(0)
    corpus = WORK / "corpus.txt"
    corpus.write_text("\n".join(text(rng, 60) for _ in range(2000)) + "\n")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(WORK / "sp"), vocab_size=400,
                                   model_type="bpe", byte_fallback=True, bos_id=1, eos_id=2, unk_id=0, pad_id=-1,
                                   minloglevel=2)
    LlamaTokenizer(vocab_file=str(WORK / "sp.model"), legacy=False).save_pretrained(folder)
    shape = {k: v for k, v in fields.items() if k != "model_type"}
    config = AutoConfig.for_model(fields["model_type"], **shape, torch_dtype="float16")
    if not weights:
        config.save_pretrained(folder)
        return
    import torch

    start = time.time()
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float16)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # the CPU: benchmarks/calibrate_cpu.py
        model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder, safe_serialization=True)
    del model
    torch.set_default_dtype(torch.float32)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    print(f"model {folder.name}: {sum(1 for _ in folder.iterdir())} files in {time.time() - start:.0f} s", flush=True)


def make_model(weights: bool = True) -> None:
    make_model_of(MODEL, dict(model_type="llama", **SHAPE), weights=weights)


def make_data(recipe: str, short: bool = False) -> Path:
    """1,500 rows; ``short``: MS-Agent answers of 20 words instead of 120 (samples of ~400 tokens)."""
    path = WORK / f"{recipe}{'-short' if short else ''}.jsonl"
    if path.is_file():
        return path
    rng = random.Random(1)
    rows = []
    for i in range(1500):
        if recipe == "oasst1":
            rows.append({"text": f"### Human: {text(rng, 40)}?### Assistant: {text(rng, 200)}"})
        elif recipe == "medqa":
            options = {letter: text(rng, 6) for letter in "ABCDE"}
            # Short enough that the prompt fits in 512 tokens: else xtuner drops every sample (T003).
            rows.append({"question": text(rng, 40) + "?", "options": options, "answer_idx": "C",
                         "answer": options["C"], "meta_info": "step1"})
        else:
            api = {"name": "weather", "description": text(rng, 10),
                   "paths": [{"name": "q", "parameters": [{"name": "city", "description": "city", "required": "True"}]}]}
            call = json.dumps({"api_name": "weather", "url": "http://api/weather", "parameters": {"city": "x"}})
            turns = [{"from": "system", "value": "You can use these APIs:\n" + json.dumps(api)},
                     {"from": "user", "value": text(rng, 12)},
                     {"from": "assistant", "value": f"{text(rng, 8)}<|startofthink|>```JSON\n{call}\n```"
                                                    f"<|endofthink|>\n\n<|startofexec|>```JSON\n{{\"t\": 1}}\n```"
                                                    f"<|endofexec|>\n{text(rng, 20 if short else 120)}"}]
            rows.append({"id": f"row-{i}", "conversations": json.dumps(turns, ensure_ascii=False)})
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


def make_config(recipe: str, max_length: int, quantization: str, batch_size: int = 1, pack: bool = True) -> Path:
    from xtuner_recipes.generate import generate
    from xtuner_recipes.rewrite import parse_override

    # The template follows config.json (llama2_chat for the stand-in); memory does not depend on it.
    sets = [f"max_length={max_length}", f"pack_to_max_length={pack}", f"batch_size={batch_size}",
            "dataloader_num_workers=2"]
    if os.environ.get("H200_ONE_EVAL"):  # a slow model's generations (MoE: ~50 s each) within the call's limit
        sets.append("evaluation_inputs=['Hi']")
    if quantization == "none":
        sets.append("~model.llm.quantization_config")
    out = WORK / f"{recipe}_{max_length}_{quantization}" if pack else WORK / f"{recipe}_{max_length}_{quantization}_b{batch_size}_unpacked"
    out = out.with_suffix(".py")
    result = generate(recipe, str(MODEL), data=str(make_data(recipe, short=not pack)),
                      overrides=[parse_override(s) for s in sets],
                      output=out)
    out.write_text(result.code)
    return out


def estimate_for(config: Path, deepspeed: str = "", gpus: int = 1) -> tuple:
    """validate's GPU estimate, its Run, and its training host-RSS estimate (GiB) for ``config`` launched
    with ``--deepspeed deepspeed`` (stage and offload from the preset) on ``gpus`` GPUs."""
    from mmengine.config import Config

    from xtuner_recipes.model_info import read_config
    from xtuner_recipes.validate.estimate.host import checkpoint_save, largest_shard, offloaded, peaks
    from xtuner_recipes.validate.estimate.count import arch_of
    from xtuner_recipes.validate.estimate.gpu import Run, estimate
    from xtuner_recipes.validate.inputs import Launch, Settings

    cfg = Config.fromfile(str(config))
    run = Run.of(Settings.parse(cfg, None), Launch.from_preset(deepspeed or None, gpus=gpus))
    arch = arch_of(read_config(str(MODEL)))[0]
    host = peaks(arch, run.quantization, shard_bytes=largest_shard(str(MODEL))[0], offloaded_bytes=offloaded(arch, run),
                 saved_bytes=checkpoint_save(arch, run),
                 zero_stage=run.zero_stage)
    return estimate(arch, run), run, host["train"]


def validated_estimate(config: Path) -> dict:
    """What `validate --level full` says of ``config``: the estimate at the data's longest sample
    (unpacked) and at max_length."""
    from xtuner_recipes.validate.runner import validate_config

    from xtuner_recipes.validate.inputs import Launch

    report = validate_config(str(config), level="full", launch=Launch(gpus=1))
    keys = ("estimated_peak_gib", "estimated_peak_gib_at_max_length", "memory_bound", "longest_sample", "tokens_max",
            "estimated_memory_gib")
    return {key: report.stats.get(key) for key in keys} | {"g_findings": [
        f"{f.code} {f.severity}: {f.message}" for f in report.findings if f.code.startswith("G")]}


def estimate_only(out: Path) -> None:
    """On any machine, before the GPU run: the tokenizer, config.json (no weights) and data the run
    will use, and validate's estimate for each unpacked run, written to OUT/h200-unpacked-estimate.json."""
    make_model(weights=False)
    rows = []
    for recipe, length, quant, batch in UNPACKED:
        config = make_config(recipe, length, quant, batch, pack=False)
        rows.append({"recipe": recipe, "max_length": length, "quantization": quant, "batch_size": batch,
                     "pack": False, "date": datetime.date.today().isoformat(), **validated_estimate(config)})
    (out / "h200-unpacked-estimate.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(json.dumps(rows, indent=1))


def deepspeed_runs(gpus: int, check: str | None) -> list[tuple]:
    """(recipe, max_length, quantization, preset, gpus) of the DeepSpeed runs asked for."""
    if check:
        return CHECKS[check][0]
    return [(*run, gpus) for run in (DEEPSPEED if gpus == 1 else DEEPSPEED_MULTI)]


def deepspeed_estimate_only(out: Path, gpus: int = 1, check: str | None = None) -> None:
    """Before the GPU run: the estimate of each DeepSpeed run, written to
    OUT/h200-deepspeed[-NGPU|-check]-estimate.json."""
    make_model(weights=False)
    rows = []
    for recipe, length, quant, preset, gpus in deepspeed_runs(gpus, check):
        estimate, run, host = estimate_for(make_config(recipe, length, quant), preset, gpus)
        rows.append({"recipe": recipe, "max_length": length, "quantization": quant, "deepspeed": preset, "gpus": gpus,
                     "date": datetime.date.today().isoformat(), "estimated_gib": estimate.peak_gib,
                     "estimated_allocated_gib": estimate.peak_allocated_gib, "estimate_parts_gib": estimate.parts,
                     "estimated_host_gib": host})
    name = (CHECKS[check][1] if check else "h200-deepspeed-estimate.json" if gpus == 1
            else f"h200-deepspeed-{gpus}gpu-estimate.json")
    (out / name).write_text(json.dumps(rows, indent=1) + "\n")
    print(json.dumps(rows, indent=1))


def train_child(config: str, work_dir: str, result_path: str, deepspeed: str = "", steps: str = str(STEPS)) -> None:
    """In a fresh process: xtuner's train script on ``config`` for ``steps`` iterations, then the peaks."""
    import torch

    from xtuner_recipes.smoke.adapt import adapt_on_load as _adapt_on_load
    from xtuner_recipes.smoke.worker import _run_tool

    notes: list[str] = []
    cap = float(os.environ.get("H200_CAP_GIB") or 0)
    if cap:  # a smaller card: the caching allocator frees its cache and retries before it raises OOM
        torch.cuda.set_per_process_memory_fraction(cap * 1024 ** 3 / torch.cuda.get_device_properties(0).total_memory)
    plan = {"config": config, "model_from": str(MODEL), "model": str(MODEL), "steps": int(steps), "device": "cuda"}
    _adapt_on_load(plan, notes)
    start = time.time()
    launcher = []
    if "LOCAL_RANK" in os.environ:  # under torchrun (several GPUs): as `xtuner train` launches it
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        launcher = ["--launcher", "pytorch"]
        result_path = f"{result_path}.{os.environ['RANK']}"
    elif deepspeed:  # one process, no launcher: DeepSpeed's init reads the rendezvous from the environment
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ.get("H200_PORT", "29511"))
    _run_tool("xtuner.tools.train", [config, "--work-dir", work_dir, *launcher,
                                     *(["--deepspeed", deepspeed] if deepspeed else [])])
    Path(result_path).write_text(json.dumps({
        "max_memory_reserved": torch.cuda.max_memory_reserved(), "max_memory_allocated": torch.cuda.max_memory_allocated(),
        "seconds": time.time() - start, "notes": notes,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux: KiB
    }))


def logged(work_dir: Path, key: str) -> list[float]:
    """Per-iteration values mmengine logged (interval 1): ``time`` in s, ``memory`` in MiB."""
    values = []
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        values += [row[key] for row in map(json.loads, scalars.read_text().splitlines()) if key in row]
    return values


def measure(recipe: str, max_length: int, quantization: str, out: Path, batch_size: int = 1, pack: bool = True,
            deepspeed: str = "", gpus: int = 1) -> dict:
    config = make_config(recipe, max_length, quantization, batch_size, pack)
    estimate, run, host = estimate_for(config, deepspeed, gpus)
    # DeepSpeed's reserved peak rises until the second optimizer step (REFERENCE.md): run past it.
    if deepspeed:
        from mmengine.config import Config

        steps = max(STEPS, 2 * int(Config.fromfile(str(config)).optim_wrapper.get("accumulative_counts", 1)) + 4)
    else:
        steps = STEPS
    validated = None if pack else validated_estimate(config)  # unpacked: at the data's longest sample
    name = config.stem + (f"_{deepspeed}" if deepspeed else "") + (f"_{gpus}gpu" if gpus > 1 else "")
    work_dir = WORK / "runs" / name
    result_path = WORK / f"{name}.result.json"
    log = out / f"{name}.log"
    with open(log, "w") as handle:
        launch = [sys.executable] if gpus == 1 else [sys.executable, "-m", "torch.distributed.run",
                                                     f"--nproc_per_node={gpus}",
                                                     f"--master_port={os.environ.get('H200_PORT', '29523')}"]
        status = subprocess.run([*launch, __file__, "--child", str(config), str(work_dir), str(result_path),
                                 deepspeed, str(steps)], stdout=handle, stderr=subprocess.STDOUT).returncode
    row = {"recipe": recipe, "max_length": max_length, "batch_size": run.batch_size, "quantization": quantization,
           "lora_r": run.lora_r, "estimated_gib": estimate.peak_gib, "estimate_parts_gib": estimate.parts,
           "date": datetime.date.today().isoformat(), "pack": pack,
           "cap_gib": float(os.environ.get("H200_CAP_GIB") or 0) or None,
           "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF"), "deepspeed": deepspeed or None, "gpus": gpus}
    if validated is not None:
        row.update(validated, estimated_gib=validated["estimated_peak_gib"],
                   estimate_parts_gib=validated["estimated_memory_gib"])
        estimate = dataclasses.replace(estimate, peak_allocated_gib=round(validated["estimated_peak_gib"] / ALLOCATOR_OVERHEAD, 3))
    if status != 0:
        row["error"] = open(log).read().strip().splitlines()[-1]
        return row
    if gpus > 1:  # each rank wrote its own: the run needs the largest
        ranks = [json.loads(Path(f"{result_path}.{rank}").read_text()) for rank in range(gpus)]
        peaks = max(ranks, key=lambda r: r["max_memory_reserved"]) | {"per_rank_reserved_gib": [
            round(r["max_memory_reserved"] / 1024 ** 3, 3) for r in ranks]}
    else:
        peaks = json.loads(result_path.read_text())
        ranks = [peaks]
    times = logged(work_dir, "time")
    # mmengine's logger resets the peak statistics at every log, so the process-wide
    # max_memory_allocated covers only the last iteration: take the per-iteration peaks it
    # logged. Reserved memory never shrinks here (nothing calls empty_cache), so its final
    # peak is the run's.
    memory = logged(work_dir, "memory")
    steady = statistics.median(times[3:]) if len(times) > 4 else None
    row.update({
        "measured_peak_gib": round(peaks["max_memory_reserved"] / 1024 ** 3, 3),
        "measured_allocated_gib": round(max(memory) / 1024, 3) if memory else None,
        "estimated_allocated_gib": estimate.peak_allocated_gib,
        "tokens_per_s": round(run.batch_size * max_length / steady, 1) if steady else None,
        "iterations": len(times), "train_seconds": round(peaks["seconds"], 1),
        "estimated_host_gib": host, "measured_host_gib": round(max(
            r["max_rss_bytes"] for r in ranks) / 1024 ** 3, 3),
        **({"per_rank_reserved_gib": peaks["per_rank_reserved_gib"]} if gpus > 1 else {}),
    })
    if validated is not None:
        row["tokens_per_s"] = None  # padded batches: tokens per second would count padding
    row["error_pct"] = round(100 * (row["estimated_gib"] - row["measured_peak_gib"]) / row["measured_peak_gib"], 1)
    row["host_error_pct"] = round(100 * (host - row["measured_host_gib"]) / row["measured_host_gib"], 1)
    return row


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        train_child(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", nargs="*", help="recipes (or recipe:length:quantization[:bN:unpacked]) to run")
    parser.add_argument("--estimate-only", action="store_true",
                        help="no GPU: write the unpacked runs' estimates (commit them before the run)")
    parser.add_argument("--deepspeed", action="store_true",
                        help="the DeepSpeed runs (with --estimate-only: their estimates, committed before the run)")
    parser.add_argument("--gpus", type=int, default=1, help="with --deepspeed: the runs on this many GPUs (torchrun)")
    parser.add_argument("--check", nargs="?", const="first", choices=list(CHECKS),
                        help="with --deepspeed: the check runs of memory_deepspeed.py (1 and 2 GPUs, and an "
                             "offload preset); `--check zero3`/`zero2`: the later checks on two GPUs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    if args.estimate_only:
        deepspeed_estimate_only(args.out, args.gpus, args.check) if args.deepspeed else estimate_only(args.out)
        return
    make_model()
    results_path = args.out / "h200-memory.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else []
    runs = [(r, n, q, 1, True, "", 1) for r, n, q in RUNS] + [(r, n, q, b, False, "", 1) for r, n, q, b in UNPACKED]
    if args.deepspeed:
        import torch

        runs = [(r, n, q, 1, True, preset, g) for r, n, q, preset, g in deepspeed_runs(args.gpus, args.check)
                if g <= torch.cuda.device_count()]
    for recipe, length, quant, batch, pack, preset, gpus in runs:
        key = (f"{recipe}:{length}:{quant}" + ("" if pack else f":b{batch}:unpacked") + (f":{preset}" if preset else "")
               + (f":{gpus}gpu" if gpus > 1 else ""))
        if args.only is None and not pack or args.only and recipe not in args.only and key not in args.only:
            continue
        start = time.time()
        row = measure(recipe, length, quant, args.out, batch, pack, preset, gpus)
        results.append(row)
        results_path.write_text(json.dumps(results, indent=1))
        print(f"{key}: estimate {row['estimated_gib']} GiB, measured {row.get('measured_peak_gib')} GiB "
              f"(allocated {row.get('measured_allocated_gib')}), {row.get('tokens_per_s')} tokens/s, "
              f"{row.get('error_pct')}%; host {row.get('estimated_host_gib')} vs {row.get('measured_host_gib')} GiB "
              f"{row.get('host_error_pct')}% {row.get('error', '')} [{time.time() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
