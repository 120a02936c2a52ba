"""The shape of the model a config trains: what every estimate counts.

An ``Arch`` made by hand (tests, docs) is a dense Llama-like block; one made by ``estimate.count`` from a
``config.json`` carries the linear layers of the model's own class built on the meta device, so experts,
shared experts, GQA, fused projections and tied embeddings are counted, not assumed.

    >>> arch = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)
    >>> arch.total_params, arch.active_intermediate, arch.moe
    (7321157632, 11008.0, False)
"""

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Linears:
    """The ``count`` linear layers of one kind in the whole model (``lm_head`` aside): ``name`` is the module's
    last name (what peft's ``target_modules`` list matches), ``path`` one of them in full (what a
    ``target_modules`` regex matches), ``routed`` whether they are routed experts (a token visits ``top_k`` of
    the ``experts``), ``attention`` whether they are attention projections."""

    name: str
    path: str
    fan_in: int
    fan_out: int
    count: int
    routed: bool = False
    attention: bool = False

    @property
    def params(self) -> int:
        return self.fan_in * self.fan_out * self.count


@dataclasses.dataclass(frozen=True)
class Arch:
    """The shape of a decoder-only transformer."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = False
    linears: tuple[Linears, ...] = ()  # counted; empty: the dense block of ``dense_linears``
    other_params: int = 0  # norms, biases and any weight that is no nn.Linear (counted; 0 by hand)
    experts: int = 0  # routed experts a MoE layer holds
    top_k: int = 0  # experts a token visits
    counted: str = ""  # how the shape was counted ("" by hand)
    attention_width: int = 0  # heads x head_dim, where it is not ``hidden`` (0: ``hidden``)
    rotary_dim: int = 0  # head_dim of a model with rotary positions (0 by hand)

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear in one dense layer."""
        kv = self.hidden * self.kv_heads // self.heads
        h, i = self.hidden, self.intermediate
        return {"q": (h, h), "k": (h, kv), "v": (h, kv), "o": (h, h), "gate": (h, i), "up": (h, i), "down": (i, h)}

    def dense_linears(self) -> tuple[Linears, ...]:
        names = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj",
                 "down": "down_proj"}
        return tuple(Linears(names[key], f"model.layers.0.{'self_attn' if key in 'qkvo' else 'mlp'}.{names[key]}",
                             a, b, self.layers, attention=key in "qkvo")
                     for key, (a, b) in self.linear_shapes().items())

    def all_linears(self) -> tuple[Linears, ...]:
        return self.linears or self.dense_linears()

    @property
    def moe(self) -> bool:
        return any(group.routed for group in self.all_linears())

    @property
    def linear_params(self) -> int:
        """Every linear weight but ``lm_head``: what bitsandbytes quantizes."""
        return sum(group.params for group in self.all_linears())

    @property
    def layer_linear_params(self) -> float:
        """One layer's linear weights, on average."""
        return self.linear_params / self.layers

    @property
    def largest_linear(self) -> int:
        """The largest single linear weight: what a recomputed layer dequantizes at a time."""
        return max(group.fan_in * group.fan_out for group in self.all_linears())

    @property
    def active_linear_params(self) -> float:
        """Linear weights one token passes through: routed experts by ``top_k / experts``."""
        return sum(group.params * (self._share if group.routed else 1) for group in self.all_linears())

    @property
    def active_intermediate(self) -> float:
        """The MLP's intermediate units one token fills in one layer, on average: the outputs of its linears that
        widen past ``hidden`` or narrow from it (a gate and an up projection count one unit between them), routed
        experts by ``top_k``."""
        units = sum(group.fan_out * group.count * (self._share if group.routed else 1)
                    for group in self.all_linears() if not group.attention and group.fan_out != self.hidden)
        return units / 2 / self.layers

    @property
    def _share(self) -> float:
        return self.top_k / self.experts if self.experts else 1.0

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def targets(self, target_modules=None) -> tuple[Linears, ...]:
        """The linears peft puts LoRA on: ``target_modules`` a list (a module whose name is one of them), a
        string (a regex its full name matches), or None (xtuner: every linear but ``lm_head``)."""
        if target_modules is None:
            return self.all_linears()
        if isinstance(target_modules, str):
            return tuple(g for g in self.all_linears() if re.fullmatch(target_modules, g.path))
        wanted = set(target_modules)
        return tuple(g for g in self.all_linears() if g.name in wanted)

    def lora_params(self, r: int, target_modules=None) -> int:
        """LoRA's A and B of rank ``r`` on the ``target_modules`` linears."""
        return sum(r * (g.fan_in + g.fan_out) * g.count for g in self.targets(target_modules))

    @property
    def total_params(self) -> int:
        """Every parameter (a hand-made Arch leaves out norms: a rounding error)."""
        return self.linear_params + self.embedding_params + self.other_params
