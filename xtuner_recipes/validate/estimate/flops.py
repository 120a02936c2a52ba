"""Floating-point operations of one training iteration, counted from the model's shape (``Arch``).

A forward pass over ``sequences`` samples of ``length`` tokens:

- the linear layers: 2 operations a weight a token, a routed expert's weights only for the ``top_k`` of its
  ``experts`` a token visits (``Arch.active_linear_params``);
- attention: the scores and their weighted sum, 2 x 2 x ``length`` x heads x head_dim a token a layer, over the
  whole square (eager and SDPA attention both compute it; the causal half is masked, not skipped);
- ``lm_head``: 2 x vocabulary x hidden a token;
- rotary positions: the angles of every position, once a forward pass (``head_dim`` a token).

A LoRA iteration (xtuner: frozen base weights, ``prepare_model_for_kbit_training`` makes the embeddings' output
require a gradient, activation checkpointing): the forward; each layer's forward again in the backward
(recompute, not ``lm_head``); the backward's input gradients, one matmul per forward matmul and two for
attention's; LoRA's own A and B, three times their forward (forward, and two gradients), four with the
recompute. Full fine-tuning adds the weight gradients (another forward's worth). Norms, activations, softmax and
the loss are elementwise: not counted, as torch's FLOP counter does not count them.

    >>> from xtuner_recipes.validate.estimate.arch import Arch
    >>> arch = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)
    >>> round(iteration(arch, sequences=1, length=2048, lora_r=64) / 1e12, 1)
    94.5
"""


def forward(arch, *, sequences: int, length: int) -> dict[str, float]:
    """A forward pass's operations by kind: ``linear``, ``attention``, ``lm_head``, ``rotary``."""
    tokens = sequences * length
    width = arch.attention_width or arch.hidden
    return {"linear": 2.0 * tokens * arch.active_linear_params,
            "attention": 4.0 * tokens * length * width * arch.layers,
            "lm_head": 2.0 * tokens * arch.vocab * arch.hidden,
            "rotary": 1.0 * tokens * arch.rotary_dim}


def lora_forward(arch, *, sequences: int, length: int, lora_r: int, target_modules=None) -> float:
    """LoRA's A and B in one forward pass: 2 x r x (in + out) a token a wrapped linear, routed ones by share."""
    share = arch.top_k / arch.experts if arch.experts else 1.0
    per_token = sum(2.0 * lora_r * (g.fan_in + g.fan_out) * g.count * (share if g.routed else 1.0)
                    for g in arch.targets(target_modules))
    return per_token * sequences * length


def iteration(arch, *, sequences: int, length: int, lora_r: int | None = 64, target_modules=None,
              checkpointing: bool = True) -> float:
    """One training iteration's operations (``lora_r`` None: full fine-tuning)."""
    parts = forward(arch, sequences=sequences, length=length)
    layers = parts["linear"] + parts["attention"]
    total = sum(parts.values()) + (layers if checkpointing else 0.0)  # forward, recompute
    total += parts["linear"] + 2 * parts["attention"] + parts["lm_head"]  # input gradients
    if lora_r is None:
        return total + parts["linear"] + parts["lm_head"]  # weight gradients
    lora = lora_forward(arch, sequences=sequences, length=length, lora_r=lora_r, target_modules=target_modules)
    return total + lora * (4 if checkpointing else 3)


def causal_skipped(arch, *, sequences: int, length: int, checkpointing: bool = True) -> float:
    """The attention operations of an iteration that SDPA's causal kernel skips: the masked half of every score
    square, in the forward, the recompute and the backward's two. Transformers passes ``is_causal`` when a batch
    needs no mask (packed samples, or one unpadded sequence); a padded batch brings its mask, and the whole square
    is computed. Counted apart from ``iteration``, which equals torch's FLOP counter (it counts the square)."""
    attention = forward(arch, sequences=sequences, length=length)["attention"]
    return 0.5 * attention * (4 if checkpointing else 3)
