"""The shape of the model a config trains, from its ``config.json``: what every estimate counts.

    >>> arch = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=103168)
    >>> arch.total_params
    7321157632
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Arch:
    """The shape of a decoder-only transformer (Llama, InternLM, InternLM2, Qwen2, Mistral…)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = False

    @classmethod
    def from_config(cls, config: dict) -> "Arch | None":
        from xtuner_recipes.model_info import SHAPE_KEYS

        def first(what):
            return next((config[k] for k in SHAPE_KEYS[what] if isinstance(config.get(k), int)), None)

        hidden, layers, heads = first("hidden"), first("layers"), first("heads")
        intermediate, vocab = first("intermediate"), first("vocab")
        if None in (hidden, layers, heads, intermediate, vocab):
            return None
        kv = first("kv_heads") or heads
        return cls(hidden, layers, heads, kv, intermediate, vocab, bool(config.get("tie_word_embeddings", False)))

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear in one layer."""
        kv = self.hidden * self.kv_heads // self.heads
        h, i = self.hidden, self.intermediate
        return {"q": (h, h), "k": (h, kv), "v": (h, kv), "o": (h, h), "gate": (h, i), "up": (h, i), "down": (i, h)}

    @property
    def layer_linear_params(self) -> int:
        return sum(a * b for a, b in self.linear_shapes().values())

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def lora_params(self, r: int) -> int:
        """LoRA's A and B of rank ``r`` on every linear of every layer (xtuner: all but lm_head)."""
        return sum(r * (a + b) for a, b in self.linear_shapes().values()) * self.layers

    @property
    def total_params(self) -> int:
        """Every linear and the embeddings (norms are a rounding error)."""
        return self.layer_linear_params * self.layers + self.embedding_params


