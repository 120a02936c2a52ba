"""Edit xtuner config source with libcst, keeping every byte that is not edited.

    >>> from xtuner_recipes.rewrite import apply_overrides, parse_override
    >>> apply_overrides("lr = 2e-4  # keep me\\n", [parse_override("lr=1e-5")]).code
    'lr = 1e-5  # keep me\\n'
"""

from xtuner_recipes.rewrite.api import RewriteResult, apply_overrides
from xtuner_recipes.rewrite.overrides import Override, parse_override

__all__ = ["Override", "RewriteResult", "apply_overrides", "parse_override"]
