"""The G checks and the estimates' stats: peak GPU memory (G001–G003), host memory (G004), training time.

Each reads the run's arithmetic (``gpu.Run``, parsed once from the config and the launch) and the model's
``config.json``; the estimates themselves live in ``gpu``, ``deepspeed``, ``host`` and ``timing``.
"""

import dataclasses
import os

from xtuner_recipes.findings import Finding
from xtuner_recipes.validate.checks import Result, check
from xtuner_recipes.validate.estimate import calibration, cards, host, timing, wholerun
from xtuner_recipes.validate.estimate.count import arch_of
from xtuner_recipes.validate.estimate.gpu import FIT_MARGIN, GIB, Run, card_gib, card_name, estimate, fit_verdict


@check("memory", level="full", codes=("G001", "G002", "G003"), reads=("model_config", "run", "samples", "options"))
def memory_check(model_config: dict, run: Run, samples, options) -> Result:
    """The estimate at the data's longest sample (batches pad to it) and at ``max_length``."""
    if run.max_length < 1:
        return Result()
    longest, max_length = samples.longest, run.max_length
    arch = arch_of(model_config)[0] if model_config else None
    fragmentation = _fragmentation(samples.padded, moe=bool(arch and arch.moe))
    if isinstance(longest, int) and 0 < longest < max_length:
        # xtuner pads a batch to its longest sample: the data can't make a longer batch than its longest.
        sampled = " among the --sample rows" if options.sample else ""
        real = dataclasses.replace(run, max_length=longest)
        stats, findings = gpu_findings(model_config, real, gpu_mem=options.gpu_mem,
                                       bound=f"the longest sample{sampled} ({longest} tokens)")
        bound_stats, bound_findings = gpu_findings(model_config, run, gpu_mem=options.gpu_mem,
                                                   bound=f"max_length ({max_length} tokens)")
        if "estimated_peak_gib" in bound_stats:
            stats["estimated_peak_gib_at_max_length"] = bound_stats["estimated_peak_gib"]
        bound_errors = [f for f in bound_findings if f.severity == "error"]
        if bound_errors and not any(f.severity == "error" for f in findings):
            found = bound_errors[0]
            findings.append(Finding("G002", "warning", found.message + f"; the data fits: its longest sample{sampled} "
                                    f"({longest} tokens) gives {stats['estimated_peak_gib']:.1f} GiB, so longer data "
                                    "would not", key="max_length", hint=found.hint))
        return Result(findings + fragmentation, _expandable(stats, samples.padded, arch))
    stats, findings = gpu_findings(model_config, run, gpu_mem=options.gpu_mem, bound=f"max_length ({max_length} tokens)")
    return Result(findings + fragmentation, _expandable(stats, samples.padded, arch))


def _expandable(stats: dict, padded: bool, arch) -> dict:
    """``stats.expandable_segments``: the launch the estimate is for sets PyTorch's expandable segments (``plan``,
    ``gen`` and ``train`` put it in the command): batches that change shape, or experts whose token counts do."""
    return {**stats, "expandable_segments": bool(padded or (arch is not None and arch.moe))}


def _fragmentation(padded: bool, *, moe: bool = False) -> list[Finding]:
    """Batches padded to their own longest sample change shape every step; PyTorch's default caching
    allocator then fragments. On the H200 (BENCHMARKS.md, 2026-11-29) an unpacked MS-Agent run whose
    allocated peak was 28.8 GiB reserved 52.8 GiB, and ran out of memory under a 32 GiB cap; with
    expandable segments it reserved 29.3–30.2 GiB, within 5% of this estimate, and ran under the cap.
    A mixture of experts' routed tensors change shape every step too: the Qwen1.5-MoE shape reserved 34.1 GiB for
    28.3 allocated by default, 31.2 with expandable segments (H100, 2026-12-07)."""
    if "expandable_segments:true" in os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "").lower() or not (padded or moe):
        return []
    if not padded:
        return [Finding("G003", "warning", "a mixture of experts sends a different number of tokens to each expert "
                        "every step: PyTorch's default allocator fragments, and the run can need more than the "
                        "estimate (measured on the Qwen1.5-MoE shape: 28.3 GiB allocated, 34.1 GiB reserved, 11% over "
                        "the estimate)", key="model.llm.pretrained_model_name_or_path",
                        hint="export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True before `xtuner train` (measured "
                             "2.0% under the estimate); `plan` puts it in the command")]
    return [Finding("G003", "warning", "batches are padded to their own longest sample, so their shape changes every "
                    "step: PyTorch's default allocator fragments, and the run can need far more than the estimate "
                    "(measured: 28.8 GiB allocated, 52.8 GiB reserved; out of memory under a 32 GiB cap)",
                    key="pack_to_max_length",
                    hint="export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True before `xtuner train` (measured "
                         "within 5% of the estimate), or pack_to_max_length=True")]


def gpu_findings(config_json: dict | None, run: Run | None, *, gpu_mem: float | None, bound: str | None = None):
    """``(stats, findings)``: the estimate and its parts; G001 when it exceeds the card.
    ``bound`` says which sequence length the estimate is taken at."""
    if not config_json or run is None:
        return {}, []
    arch, why = arch_of(config_json)
    if arch is None:
        return {"memory_basis": f"not estimated: {why}"}, []
    result = estimate(arch, run)
    stats = {"model_params": arch.total_params, "model_counted": arch.counted or "by hand",
             **({"experts": f"{arch.top_k} of {arch.experts} a token"} if arch.moe else {}),
             "estimated_peak_gib": result.peak_gib, "estimated_memory_gib": result.parts,
             "estimated_peak_parts_gib": result.peak_parts}
    if bound:
        stats["memory_bound"] = bound
    card, source = (gpu_mem, "--gpu-mem") if gpu_mem else (card_gib(), "this machine's GPU")
    findings = []
    if card:
        stats["gpu_mem_gib"] = round(card, 2)
        verdict, _ = fit_verdict(result.peak_gib, card)
        largest = max(result.parts, key=result.parts.get)
        where = f"estimated peak GPU memory {result.peak_gib:.1f} GiB" + (f" at {bound}" if bound else "")
        hint = ("lower max_length or batch_size, keep 4-bit quantization and activation checkpointing, or shard "
                "with --deepspeed deepspeed_zero2/3 over more GPUs")
        if verdict == "does not fit":
            findings.append(Finding("G001", "error", f"{where} exceeds {card:.1f} GiB ({source}); largest part: "
                                    f"{largest} {result.parts[largest]:.1f} GiB", key="max_length", hint=hint))
        elif verdict == "tight":
            findings.append(Finding(
                "G001", "warning", f"{where} is within the estimate's {FIT_MARGIN:.0%} error of {card:.1f} GiB "
                f"({source}): measured peaks have come up to 7.8% above their estimates, so the run may run out of "
                f"memory; largest part: {largest} {result.parts[largest]:.1f} GiB", key="max_length", hint=hint))
    return stats, findings


@check("host memory", level="full", codes=("G004",), reads=("model_config", "run", "settings", "options"))
def host_check(model_config: dict, run: Run, settings, options) -> Result:
    """``stats.host_peak_gib`` a step; G004 when training's exceeds this machine's memory (only on a
    machine with a GPU, where training would run) or ``--host-mem``."""
    arch, why = arch_of(model_config)
    if arch is None:
        return Result(stats={"host_basis": f"not estimated: {why}"} if model_config else {})
    model_dir = settings.model_path
    shard, measured = host.largest_shard(model_dir if isinstance(model_dir, str) else None)
    found = host.peaks(arch, run.quantization, shard_bytes=shard, offloaded_bytes=host.offloaded(arch, run),
                       saved_bytes=host.checkpoint_save(arch, run),
                       zero_stage=run.zero_stage)
    stats = {"host_peak_gib": found, "host_shard": f"{shard / GIB:.2f} GiB " + (
        "(the model's largest checkpoint file)" if measured else "(assumed: transformers' 5 GB shards)")}
    limit = options.host_mem or (host.machine_gib() if card_gib() else None)
    if limit and found["train"] > limit:
        return Result([Finding("G004", "warning", f"training is estimated to need {found['train']:.1f} GiB of host "
                               f"memory (peak RSS), more than the {limit:.0f} GiB here: the process may be killed while "
                               "the model loads", key="model.llm.quantization_config",
                               hint="4-bit quantization loads one shard at a time; or a machine with more memory")],
                      stats)
    return Result(stats=stats)


@check("time", level="full", reads=("model_config", "run", "samples", "schedule", "options", "settings", "config"))
def time_check(model_config: dict, run: Run, samples, schedule, options, settings, config) -> Result:
    """Seconds an iteration and hours of training on one card (``--gpu``, this machine's, else the H200 where the
    constants were measured), with the range the fit's residuals give, or why none is given."""
    model, total = timing.load_model(), schedule.total_iters
    arch, why = arch_of(model_config)
    if model is not None and arch is None and model_config:
        # a model the counter cannot build on the meta device: said, as the memory estimate says it
        return Result(stats={"time_basis": f"not estimated: {why}"})
    if model is None or not total or run.max_length < 1 or arch is None:
        return Result()
    name = options.gpu or card_name() or model["card"]
    card, entry, calibrated_verdict = calibration.time_source(name)
    if card is None:
        return Result(stats={"time_basis": f"not estimated: {name} is not in the table of cards ({cards.names()}) "
                                           f"and was not calibrated here: pass --gpu with the nearest, or run "
                                           f"`xtuner-recipes calibrate CONFIG` on it ({calibration.MEASURES})"})
    calibrated = calibration.calibrated_model(model, entry, run.quantization) if entry else None
    model = table_model = calibration.paced_model(model, entry)  # the host's part at this host's measured pace
    if calibrated and calibrated_verdict:
        model = calibrated
    packed = not samples.padded
    lengths = samples.lengths
    if not packed and lengths is None:
        return Result(stats={"time_basis": "not estimated: the samples' lengths were not counted"})
    why = timing.outside(model, run)
    if why:
        return Result(stats={"time_basis": f"not estimated: {why}"})

    def iteration(model, card):
        if packed:  # every sample is max_length long, no mask
            found = timing.parts(model, arch, run, sequences=run.batch_size, length=run.max_length, card=card,
                                 causal=True)
            return timing.combine(model, found), found
        return timing.expected(model, arch, run, sequences=run.batch_size, lengths=lengths, card=card), None

    seconds, parts = iteration(model, card)
    family = "moe" if arch.moe else "dense"
    low, high = model["residual_pct"][family]
    # the range: what the fit missed its own rows by, widened to what it missed the held-out configs by, and,
    # where this host's pace is unknown, to the hosts' paces the runs saw
    missed = [row["error_pct"] for row in model.get("held_out") or [] if row.get("family") == family]
    paces = timing.pace_range(model) if model is table_model and "host_op_us" not in model else None
    fast, slow = ((iteration(dict(model, host_op_us=pace), card)[0] for pace in paces) if paces
                  else (seconds, seconds))
    span = [min(seconds, fast) / (1 + max([high, *missed]) / 100), max(seconds, slow) / (1 + min([low, *missed]) / 100)]
    measured = timing.measured_cards(model)
    scaled = card.name not in measured
    kind = "a mixture of experts" if arch.moe else "dense models"
    if model is not table_model:
        made = model["calibrated"]
        basis = (f"iterations only (no model load, evaluation or checkpoints): the FLOPs of this model over the "
                 f"throughput and per-call cost `xtuner-recipes calibrate` measured on this card "
                 f"({made['date']}, {made['quantization']}); the range is the fit's, which missed its own "
                 f"{len(model['fitted_on'])} runs by {low:+.1f}% to {high:+.1f}% for {kind} ({timing.held_out_words(model)})")
    else:
        basis = (f"iterations only (no model load, evaluation or checkpoints): the card's work (the FLOPs of this "
                 f"model over a fitted throughput) and the host's (per-call costs), about the longer of the two "
                 f"(more where they are close), fitted to "
                 f"{len(model['fitted_on'])} runs, which the fit missed by {low:+.1f}% to {high:+.1f}% for {kind} "
                 f"({timing.held_out_words(model)})")
    if scaled:
        basis += f"; {timing.scaled_words(measured)}"
    import numpy as np

    # which side sets the pace: a packed batch's parts, else a batch of the median sample's length
    typical = run.max_length if parts else min(run.max_length, int(np.median(lengths)))
    sides = parts or timing.parts(model, arch, run, sequences=run.batch_size, length=typical, card=card)
    pace = timing.bound(model, sides)
    if "host_op_us" in model:
        basis += (f"; the host's part at this host's pace, {model['host_op_us']:.1f} µs an op as `xtuner-recipes "
                  f"calibrate` measured it (the constants hold at {model['host_pace_us']:.2f} µs)")
    elif paces:
        basis += (f"; the host's part at {model['host_pace_us']:.2f} µs an op (calibrate's probe), the range over "
                  f"the {paces[0]:.1f}–{paces[1]:.1f} µs the measured runs' hosts took: `xtuner-recipes calibrate` "
                  "measures this one's")
    if pace == "host":
        on_card, on_host = timing.sides(sides)
        basis += (f"; the host sets this iteration's pace (its Python and kernel launches, ~{on_host:.2f} s, against "
                  f"the card's ~{on_card:.2f} s)")
    if run.gpus > 1:
        over = f"the network (assumed {cards.NETWORK_GBS} GB/s)" if run.nodes > 1 else "the cards' link"
        basis += (f"; on {run.gpus} GPUs over {run.nodes} machine{'s' if run.nodes > 1 else ''}, each GPU's iteration "
                  f"plus the gradients' all-reduce over {over}: modelled, not measured")
    beside = None
    if calibrated and model is table_model:  # a card of the table: calibrate's time beside the table's
        beside = round(iteration(calibrated, calibration.card(entry))[0], 3)
        basis += (f"; `xtuner-recipes calibrate` on this card ({calibrated['calibrated']['date']}) says {beside} s, "
                  "shown beside it, not instead: calibrate has not yet been shown to beat the table")
    if not card.bf16 and card.name != calibration.CPU_CARD:  # the CPU calibrate measured: no AMP question
        basis += (f"; the {card.name} has no bf16: xtuner's QLoRA configs compute in fp16 and run there, a config "
                  "that trains in bf16 does not")
    stats = {"seconds_per_iter": round(seconds, 3), "seconds_per_iter_range": [round(v, 3) for v in span],
             "train_hours": round(seconds * total / 3600, 2),
             "train_hours_range": [round(v * total / 3600, 2) for v in span],
             "time_card": card.name, "time_gpus": run.gpus, "time_scaled": scaled, "time_basis": basis,
             "time_measured_on": measured,
             "time_calibrated": model is not table_model}
    if pace:
        stats["time_bound"] = pace
    if beside is not None:
        stats["seconds_per_iter_calibrated"] = beside
    if parts:
        stats["seconds_per_iter_parts"] = {k: round(v, 4) for k, v in parts.items()}
    stats.update(_whole_run(model, arch, run, card, samples, schedule, settings, config, span, paces))
    return Result(stats=stats)


def _whole_run(model, arch, run, card, samples, schedule, settings, config, span, paces) -> dict:
    """The whole run's parts (``wholerun``), fast end and slow end, over the total-iteration range and, where this
    host's pace is unknown, the hosts' ``paces``; the answer's evaluation at the reference pace."""
    from xtuner_recipes.validate.inputs import setting

    low_total, high_total = schedule.total_range or (schedule.total_iters, schedule.total_iters)
    iterations = (span[0] * low_total, span[1] * high_total)
    hook = settings.checkpoint_hook if isinstance(settings.checkpoint_hook, dict) else {}
    saved = wholerun.saves(hook, high_total, per_epoch=schedule.iters_per_epoch, epoch_loop=settings.epoch_loop)
    # EvaluateChatHook generates at the saves of an iteration-based CheckpointHook only
    save_at = saved if dict.get(hook, "by_epoch", True) is False else []
    rows = sum(len(tally.full) for _, tally in samples.tallies) or None
    procs = setting(config, "train_dataloader.dataset.map_num_proc", 32)
    chat, answer = wholerun.chat_hook(setting(config, "custom_hooks") or []), _median_reply(samples)
    found = wholerun.parts(model, arch, run, card, iterations=iterations, chat=chat, save_at=save_at,
                           saves=len(saved), total=high_total, weight_bytes=_weight_bytes(settings.model_path, arch),
                           rows=rows, map_num_proc=procs if isinstance(procs, int) and procs > 0 else 1,
                           saved_bytes=wholerun.checkpoint_bytes(arch, run), answer=answer, paces=paces)
    low, high = (sum(ends[i] for ends in found.values()) / 3600 for i in (0, 1))
    # the answer's evaluation at the reference pace where the range's fast end is the fastest host's
    reference = (wholerun.evaluation(model, arch, run, card, chat, total=high_total, save_at=save_at, reply=answer)
                 if paces and "evaluation" in found else None)
    at = wholerun.point(found, reference)
    return {"run_parts_s": {name: list(ends) for name, ends in found.items()}, "run_point_s": at,
            "run_hours": round(sum(at.values()) / 3600, 2), "run_hours_range": [round(low, 2), round(high, 2)],
            "run_basis": "the whole of plan's commands (xtuner train from start to exit, pth_to_hf, merge): the "
                         "iterations as above; the process starts, disk reads and writes, data build and "
                         "EvaluateChatHook's generations modelled, a generated token's cost fitted to the evaluation "
                         "rounds of three runs measured end to end (BENCHMARKS.md 2026-12-07): the answer 1% and 16% "
                         "under two of them (11% at that host's measured pace), the third's random-weight replies never "
                         "stopping: the answer takes replies as long as the data's, the range's top each at "
                         "max_new_tokens" + (f", and over the {paces[0]:.1f}–{paces[1]:.1f} µs hosts' paces (the "
                                             "answer's at the reference)" if paces else "")}


def _median_reply(samples) -> int | None:
    """The median of the counted samples' labelled tokens (their replies), or None when none were counted."""
    import numpy as np

    replies = [np.frombuffer(tally.labelled, dtype=np.int32) for _, tally in samples.tallies if len(tally.labelled)]
    return int(np.median(np.concatenate(replies))) if replies else None


def _weight_bytes(model_dir, arch) -> float:
    """The model's checkpoint files' bytes when the folder is here, else its parameters in 16 bits."""
    sizes = host.weight_files(model_dir if isinstance(model_dir, str) else None)
    return float(sum(sizes)) if sizes else arch.total_params * 2.0
