"""Time one generated token the way xtuner's EvaluateChatHook makes it (issue #25), against validate's decode step
(``wholerun.decode_step``) committed before the run.

    python benchmarks/gpu/h200_decode.py --estimate-only --out benchmarks/results   # here, first: commit it
    H200_ESTIMATE_VERSION=-v5 python benchmarks/gpu/h200_decode.py --estimate-only --out benchmarks/results
    python benchmarks/gpu/h200_decode.py --out $OUT                                 # on the GPU

The session-17 end-to-end run of ``oasst1-2048-eval`` (h200_whole_run.py) spent 100-170 s an evaluation round where
the estimate said 22-48 s, and its log cannot say how many tokens a round made (the random model's replies decode to
a few bytes). Here the model is that run's (its config, built by xtuner's BUILDER as the train script builds it,
4-bit with LoRA, on the GPU), put in inference mode as EvaluateChatHook does, and each of the config's evaluation
inputs is generated with EvaluateChatHook's own generation settings (sampling, its stop words) at a fixed count of
new tokens (``min_new_tokens`` = ``max_new_tokens``): 50 and 300. A token's time is the difference over the 250
tokens between them (the prompt's forward cancels out). The host's pace (calibrate's probe) is read before and after.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import h200_memory as mem  # noqa: E402
import h200_whole_run as whole  # noqa: E402

RUN = "oasst1-2048-eval"
COUNTS = (50, 300)
REPEATS = 2
CARDS = ("NVIDIA H200", "NVIDIA H100 80GB HBM3")


def estimates(out: Path) -> None:
    """validate's decode step for the run's config on each card, read where validate computes it."""
    from h200_time_check2 import AT_PACES

    from xtuner_recipes.validate.estimate import cards, timing, wholerun
    from xtuner_recipes.validate.inputs import Launch, Options
    from xtuner_recipes.validate.runner import validate_config

    mem.make_model(weights=False)
    config = whole.make_config(RUN)
    seen, original_step, original_model = [], wholerun.decode_step, timing.load_model
    wholerun.decode_step = lambda *args, **kwargs: seen.append(original_step(*args, **kwargs)) or seen[-1]
    rows, base = [], timing.load_model()
    try:
        for card in CARDS:
            at_pace = []
            for pace in AT_PACES:
                timing.load_model = lambda pace=pace: dict(base, host_op_us=pace)
                validate_config(str(config), level="full", launch=Launch.from_preset(None),
                                options=Options(gpu=cards.find(card).name))
                at_pace.append([pace, round(seen[-1], 5)])
            timing.load_model = original_model
            validate_config(str(config), level="full", launch=Launch.from_preset(None), options=Options(gpu=card))
            rows.append({"run": RUN, "card": card, "date": datetime.date.today().isoformat(),
                         "seconds_per_token": round(seen[-1], 5), "seconds_per_token_at_pace": at_pace})
    finally:
        wholerun.decode_step, timing.load_model = original_step, original_model
    version = os.environ.get("H200_ESTIMATE_VERSION", "")  # "-v5": a later model's, beside the first
    (out / f"h200-decode-estimate{version}.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(json.dumps(rows, indent=1))


def measure(out: Path, repeats: int = REPEATS) -> dict:
    import torch
    from mmengine.config import Config
    from transformers import StoppingCriteriaList
    from xtuner.registry import BUILDER
    from xtuner.utils import StopWordStoppingCriteria

    from xtuner_recipes.calibrate_probes import host_op_us, host_sync_us

    mem.make_model()
    config = whole.make_config(RUN)
    cfg = Config.fromfile(str(config))
    row = {"run": RUN, "date": datetime.date.today().isoformat(), "card": torch.cuda.get_device_name(0),
           "host_op_us": host_op_us("cuda"), "host_sync_us": host_sync_us("cuda")}
    start = time.time()
    model = BUILDER.build(cfg.model).cuda()
    row["build_s"] = round(time.time() - start, 1)
    hook = next(h for h in cfg.custom_hooks if "EvaluateChatHook" in str(h.get("type")))
    tokenizer = BUILDER.build(hook["tokenizer"])
    stop = StoppingCriteriaList([StopWordStoppingCriteria(tokenizer, word) for word in hook.get("stop_words", [])])
    settings = dict(do_sample=True, temperature=0.1, top_p=0.75, top_k=40, eos_token_id=tokenizer.eos_token_id,
                    pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    template = hook.get("prompt_template") or {}
    system = hook.get("system") or ""
    instruction = template.get("INSTRUCTION", "{input}")
    model.activation_checkpointing_disable()
    model.llm.config.use_cache = True
    model.eval()
    times = {count: [] for count in COUNTS}
    made = {count: [] for count in COUNTS}
    for _ in range(repeats):
        for sample in hook["evaluation_inputs"]:
            prompt = (template.get("SYSTEM", "").format(system=system) if system else "") + instruction.format(
                input=sample, round=1)
            ids = tokenizer.encode(prompt, return_tensors="pt").cuda()
            for count in COUNTS:
                torch.cuda.synchronize()
                begin = time.perf_counter()
                with torch.no_grad():
                    output = model.generate(input_ids=ids, max_new_tokens=count, min_new_tokens=count,
                                            stopping_criteria=stop, **settings)
                torch.cuda.synchronize()
                times[count].append(time.perf_counter() - begin)
                made[count].append(int(output.shape[1] - ids.shape[1]))
                print(f"{made[count][-1]} new tokens in {times[count][-1]:.3f} s", flush=True)  # a cut call keeps these
    low, high = COUNTS
    per_token = [(b - a) / (high - low) for a, b in zip(times[low], times[high], strict=True)]
    row.update(times={str(c): [round(t, 3) for t in v] for c, v in times.items()},
               new_tokens={str(c): v for c, v in made.items()},
               seconds_per_token=[round(t, 5) for t in per_token],
               seconds_per_token_median=round(statistics.median(per_token), 5),
               host_op_us_after=host_op_us("cuda"), host_sync_us_after=host_sync_us("cuda"))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--estimate-only", action="store_true")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="passes over the evaluation inputs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    mem.WORK.mkdir(parents=True, exist_ok=True)
    if args.estimate_only:
        estimates(args.out)
        return
    path = args.out / "h200-decode.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    row = measure(args.out, args.repeats)
    path.write_text(json.dumps([*rows, row], indent=1) + "\n")
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
