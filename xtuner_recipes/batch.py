"""Keep a config's global batch when it moves to more GPUs, by adjusting ``accumulative_counts``.

Global batch = ``batch_size`` × ``accumulative_counts`` × GPUs. A config is written
for one GPU; on N GPUs the same global batch needs 1/N of the accumulation.

    >>> accumulation_for(batch_size=1, accumulative_counts=16, gpus=8)
    (2, 16)
"""

from xtuner_recipes.errors import OverrideError
from xtuner_recipes.rewrite.api import parse_config
from xtuner_recipes.rewrite.locate import bindings, code_of
from xtuner_recipes.rewrite.overrides import Override
from xtuner_recipes.rewrite.values import literal
from xtuner_recipes.values import is_positive_int


def accumulation_for(*, batch_size: int, accumulative_counts: int, gpus: int) -> tuple[int, int]:
    """``(accumulative_counts on gpus, the global batch that gives)``, as close to the 1-GPU batch as can be."""
    counts = max(1, round(accumulative_counts / gpus))
    return counts, batch_size * counts * gpus


def _setting(source: str, name: str, filename: str) -> int:
    binding = bindings(parse_config(source, filename)).get(name)
    is_literal, value = literal(code_of(binding.value)) if binding else (False, None)
    if not is_literal or not is_positive_int(value):
        raise OverrideError(f"{filename}: --gpus needs {name} as a positive integer literal, got "
                            f"{code_of(binding.value) if binding else 'no such setting'}",
                            hint=f"set it first, e.g. --set {name}=16")
    return value


def gpus_override(source: str, gpus: int, filename: str = "<config>") -> tuple[Override | None, str]:
    """The edit that keeps the config's global batch on ``gpus`` GPUs, and a sentence saying so."""
    if gpus < 1:
        raise OverrideError(f"--gpus must be at least 1, got {gpus}")
    batch = _setting(source, "batch_size", filename)
    counts = _setting(source, "accumulative_counts", filename)
    new, global_batch = accumulation_for(batch_size=batch, accumulative_counts=counts, gpus=gpus)
    sentence = (f"accumulative_counts {counts} → {new} for {gpus} GPU(s): global batch {batch} × {new} × {gpus} = "
                f"{global_batch}" + ("" if global_batch == batch * counts else f" (1-GPU global batch was {batch * counts}; "
                                     "the closest whole accumulation)"))
    return (Override(("accumulative_counts",), str(new)) if new != counts else None), sentence
