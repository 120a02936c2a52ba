"""The whole run's wall clock, part by part: what ``plan``'s commands do besides the iterations.

- ``load``: xtuner's train script starting (``STARTUP_S``), the weights read from disk (``READ_GBS``) and, for a
  4-bit config, sent to the GPU in 16 bits to be quantized (``PCIE_GBS``);
- ``data``: xtuner's tokenize-and-map of every row, ``map_num_proc`` processes at once (``DATA_S_PER_ROW``, after
  ``DATA_START_S`` to start them and to pack);
- ``iterations``: the iteration estimate (``timing``) over the total-iteration range packing gives;
- ``evaluation``: every ``model.generate`` call of xtuner's ``EvaluateChatHook`` (before training: 50 new tokens;
  every ``evaluation_freq`` iterations and at every checkpoint save; after training: ``max_new_tokens``) for each
  evaluation input, a decoded token costing one forward of one token (``decode_step``): at the fast end a reply
  after training ends where the data's replies do (the median of their labelled tokens: a fine-tuned model answers
  like its data, as the end-to-end runs' did), and that is the answer (``point``); at the slow end it runs to
  ``max_new_tokens``;
- ``checkpoints``: each save's LoRA weights and optimizer states written (``WRITE_GBS``);
- ``pth_to_hf``: a process start and the model built again (as training builds it), the adapter written;
- ``merge``: a process start, the 16-bit weights read, merged and written again.

The process costs and the disk speeds are modelled, not measured on the run's machine: a local NVMe disk at the
fast end, a network disk at the slow end; after ``xtuner-recipes calibrate`` on that machine, its measured write
speed and decode step's call cost replace the modelled ones. ``STARTUP_S`` is the one constant with
measured rows: the H200 smoke's tiny-model stages, whose time is almost all the process start (BENCHMARKS.md,
2026-11-29: pth_to_hf 27.5 s, merge 25.0 s, chat 19.3 s; 3 rows).

    >>> generations(Chat(inputs=2, max_new_tokens=600, every=500), total=1000, saves=[500, 1000])
    [50, 600, 600, 600]
    >>> generations(Chat(inputs=2, max_new_tokens=600, every=500), total=1000, saves=[500, 1000], answer=40)
    [50, 41, 41, 41]
"""

import dataclasses

from xtuner_recipes.validate.data.leaves import type_name

STARTUP_S = 20.0  # an xtuner tool's process start: torch, transformers, xtuner, mmengine imported, the config built
READ_GBS = (2.0, 0.5)  # the weights read from disk, GB/s: a local NVMe, a network disk
WRITE_GBS = (1.5, 0.5)
PCIE_GBS = 12.0  # 16-bit weights to the GPU before bitsandbytes quantizes them
DATA_S_PER_ROW = 1e-3  # xtuner's map of one row (template, tokenize), one process
DATA_START_S = 5.0  # datasets' map starting its map_num_proc processes, then packing and the length check
BEFORE_TRAIN_TOKENS = 50  # EvaluateChatHook.before_train generates 50 tokens, whatever max_new_tokens says
HOOK_MAX_NEW_TOKENS = 600  # EvaluateChatHook's default max_new_tokens


@dataclasses.dataclass(frozen=True)
class Chat:
    inputs: int
    max_new_tokens: int
    every: int | None  # evaluation_freq (every_n_iters); None: only before and after training


def chat_hook(custom_hooks) -> Chat | None:
    """The config's EvaluateChatHook (raw ``custom_hooks``), or None when it has none."""
    for hook in custom_hooks if isinstance(custom_hooks, list | tuple) else ():
        if isinstance(hook, dict) and "EvaluateChatHook" in (type_name(dict.get(hook, "type")) or ""):
            inputs = dict.get(hook, "evaluation_inputs") or []
            every = dict.get(hook, "every_n_iters")
            tokens = dict.get(hook, "max_new_tokens", HOOK_MAX_NEW_TOKENS)
            return Chat(inputs=len(inputs) if isinstance(inputs, list | tuple) else 1,
                        max_new_tokens=tokens if isinstance(tokens, int) and tokens > 0 else HOOK_MAX_NEW_TOKENS,
                        every=every if isinstance(every, int) and every > 0 else None)
    return None


def saves(checkpoint_hook, total: int, *, per_epoch: int | None = None, epoch_loop: bool = False) -> list[int]:
    """Iterations where mmengine's CheckpointHook saves over ``total`` iterations: every ``interval`` iterations
    (``by_epoch=False``) or epochs (``by_epoch``, its default, which saves nothing in an iteration loop), and the
    last one (``save_last``, default True)."""
    hook = checkpoint_hook if isinstance(checkpoint_hook, dict) else {}
    interval = dict.get(hook, "interval", -1)
    if dict.get(hook, "by_epoch", True) is not False:
        if not epoch_loop:
            return []
        interval = interval * (per_epoch or 1) if isinstance(interval, int) and interval > 0 else -1
    found = list(range(interval, total + 1, interval)) if isinstance(interval, int) and interval > 0 else []
    if dict.get(hook, "save_last", True) and total and total not in found:
        found.append(total)
    return found


def generations(chat: Chat, *, total: int, saves: list[int], answer: int | None = None) -> list[int]:
    """New tokens of each round of generation EvaluateChatHook makes (one ``generate`` an input each): up to
    ``max_new_tokens``, or, with ``answer``, a reply of that many tokens and its end after training."""
    after = chat.max_new_tokens if answer is None else min(chat.max_new_tokens, answer + 1)
    rounds = [BEFORE_TRAIN_TOKENS]
    if chat.every is not None:  # after_train_iter: every_n_iters, and wherever a checkpoint is saved
        rounds += [after for i in range(1, total + 1) if i % chat.every == 0 or i in saves]
    return [*rounds, after]  # after_train


def decode_step(model: dict, arch, run, card) -> float:
    """Seconds a generated token: one forward of one token through every linear layer (transformers' expert loops
    call every expert), each call's fixed cost and the weights read at the card's bandwidth. The call's cost is
    calibrate's where it measured this machine; else the table's, ``decode_seconds_per_call``, fitted to the
    EvaluateChatHook rounds of the end-to-end runs whose new tokens are known (4-bit rows; 16-bit decoding is
    taken to cost the host the same a call) at the reference pace, and scaled by this host's pace like the
    iterations' host side."""
    from xtuner_recipes.validate.estimate.timing import host_pace

    calls = sum(group.count for group in arch.all_linears())
    per_param = 0.5 if run.quantization == "nf4" else 1.0 if run.quantization == "int8" else 2.0
    per_call = (model.get("seconds_per_decode_call") or {}).get(run.quantization)  # calibrate's, when measured
    if per_call is None:
        table = model.get("decode_seconds_per_call")
        per_call = table * host_pace(model) if table is not None else model["seconds_per_call"][run.quantization]
    per_token = (model.get("seconds_per_decode_token") or {}).get(run.quantization, 0.0)
    return per_token + calls * per_call + arch.total_params * per_param / (card.bandwidth_gbs * 1e9)


def evaluation(model: dict, arch, run, card, chat: Chat, *, total: int, save_at: list[int],
               reply: int | None) -> float:
    """Seconds of every EvaluateChatHook generation, each input's reply after training ``reply`` tokens long (None:
    ``max_new_tokens``), at the host pace ``model`` holds."""
    rounds = generations(chat, total=total, saves=save_at, answer=reply)
    return sum(rounds) * chat.inputs * decode_step(model, arch, run, card)


def point(found: dict, evaluation: float | None = None) -> dict[str, float]:
    """The answer inside each part's range: the middle, but evaluation at its fast end, replies as long as the
    data's (a fine-tuned model answers like its data, as the end-to-end runs' did), or at ``evaluation`` where the
    fast end is also the fastest host's; its slow end, every reply run to ``max_new_tokens``, is what a model that
    never stops costs.

        >>> point({"load": (10.0, 30.0), "evaluation": (5.0, 100.0)})
        {'load': 20.0, 'evaluation': 5.0}
    """
    at = {name: round(low if name == "evaluation" else (low + high) / 2, 1) for name, (low, high) in found.items()}
    if evaluation is not None and "evaluation" in at:
        at["evaluation"] = round(evaluation, 1)
    return at


def checkpoint_bytes(arch, run) -> float:
    """Bytes a checkpoint writes: the trained weights in fp32 and their optimizer states (LoRA's alone, or the
    whole model's and its 16-bit copy for a full fine-tune)."""
    if run.lora_r is None:
        return arch.total_params * (2 + 4 + run.optimizer_state_bytes)
    return arch.lora_params(run.lora_r, run.lora_targets) * (4 + run.optimizer_state_bytes)


def parts(model: dict, arch, run, card, *, iterations: tuple[float, float], chat: Chat | None,
          save_at: list[int], saves: int, total: int, weight_bytes: float, rows: int | None, map_num_proc: int,
          saved_bytes: float, answer: int | None = None,
          paces: tuple[float, float] | None = None) -> dict[str, tuple[float, float]]:
    """Seconds of each part of the run, (fast end, slow end). ``save_at``: the iterations an iteration-based
    CheckpointHook saves at (EvaluateChatHook generates there too); ``saves``: how many saves in all; ``answer``:
    the data's median reply in tokens (the fast end's replies after training); ``paces``: where this host's pace
    is unknown, the fastest and slowest the measured runs' hosts took, the evaluation's ends taken at them (a
    generated token's cost is mostly the host's, as the iterations' range already spans)."""
    def disk(size, speeds):
        return tuple(size / (speed * 1e9) for speed in speeds)

    quantized = run.quantization in ("nf4", "int8")
    read = disk(weight_bytes, READ_GBS)
    to_gpu = weight_bytes / (PCIE_GBS * 1e9) if quantized else 0.0
    load = tuple(STARTUP_S + r + to_gpu for r in read)
    found = {"load": load}
    if rows:
        data = DATA_START_S + rows * DATA_S_PER_ROW / max(1, map_num_proc)
        found["data"] = (data, data)
    found["iterations"] = iterations
    if chat is not None and chat.inputs:
        hosts = [dict(model, host_op_us=pace) for pace in paces] if paces else [model, model]
        found["evaluation"] = tuple(evaluation(host, arch, run, card, chat, total=total, save_at=save_at, reply=reply)
                                    for reply, host in zip((answer, None), hosts))
    write = (model["write_gbs"],) * 2 if model.get("write_gbs") else WRITE_GBS  # calibrate's, when measured
    found["checkpoints"] = tuple(saves * s for s in disk(saved_bytes, write))
    found["pth_to_hf"] = load
    merged = arch.total_params * 2
    found["merge"] = tuple(STARTUP_S + r + w for r, w in zip(read, disk(merged, write), strict=True))
    return {name: (round(low, 1), round(high, 1)) for name, (low, high) in found.items()}
