"""Facts about the installed xtuner, read from its source files without importing it.

Importing xtuner pulls in torch (about 2 s here); ``gen``, ``set`` and
``validate --level static`` must stay light, so they read the source instead.

    >>> "internlm2_chat" in prompt_template_names()  # doctest: +SKIP
    True
"""

import ast
import importlib.util
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def source_dir() -> Path | None:
    """Where the installed xtuner's package lives, or None when it is not installed."""
    spec = importlib.util.find_spec("xtuner")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def prompt_template_names() -> frozenset[str]:
    """The names in xtuner's ``PROMPT_TEMPLATE`` (``xtuner/utils/templates.py``), empty if unknown."""
    root = source_dir()
    if root is None:
        return frozenset()
    try:
        tree = ast.parse((root / "utils" / "templates.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return frozenset()
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "PROMPT_TEMPLATE" for t in node.targets)
            and isinstance(node.value, ast.Call)
        ):
            return frozenset(k.arg for k in node.value.keywords if k.arg)
    return frozenset()
