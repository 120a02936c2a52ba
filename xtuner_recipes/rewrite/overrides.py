"""The override language, parsed by a pure function.

    >>> parse_override("model.lora.r=16")
    Override(path=('model', 'lora', 'r'), value='16', remove=False)
    >>> parse_override("~model.llm.quantization_config").remove
    True
    >>> parse_override("param_scheduler.0.start_factor=1e-4").path
    ('param_scheduler', 0, 'start_factor')
"""

import re
from dataclasses import dataclass

from xtuner_recipes.errors import OverrideError

_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")


@dataclass(frozen=True)
class Override:
    """One edit: set ``path`` to the source text ``value``, or remove ``path``."""

    path: tuple[str | int, ...]
    value: str | None = None
    remove: bool = False

    @property
    def key(self) -> str:
        """The dotted form of the path, as the user wrote it: ``model.lora.r``."""
        return ".".join(str(part) for part in self.path)


def parse_path(text: str) -> tuple[str | int, ...]:
    """Split ``a.b.0.c`` into ``('a', 'b', 0, 'c')``; the first part must be a name."""
    parts = text.split(".")
    path: list[str | int] = []
    for position, part in enumerate(parts):
        if not _SEGMENT.fullmatch(part):
            raise OverrideError(f"expected a dotted path of names and list indices, got {text!r}")
        if part.isdigit():
            if position == 0:
                raise OverrideError(f"a path must start with a setting's name, got {text!r}")
            path.append(int(part))
        else:
            path.append(part)
    return tuple(path)


def parse_override(text: str) -> Override:
    """Parse ``KEY=VALUE`` (set) or ``~KEY`` (remove) into an ``Override``.

    The value is kept as source text; what it may be is decided against the
    config it is applied to (see ``rewrite.values``).
    """
    text = text.strip()
    if text.startswith("~"):
        if "=" in text:
            raise OverrideError(f"a removal takes no value: expected ~KEY, got {text!r}")
        return Override(parse_path(text[1:].strip()), remove=True)
    key, sep, value = text.partition("=")
    if not sep:
        raise OverrideError(f"expected KEY=VALUE or ~KEY, got {text!r}")
    if not value.strip():
        raise OverrideError(f"expected a value after '=', got {text!r}")
    return Override(parse_path(key.strip()), value=value.strip())
