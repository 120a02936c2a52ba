"""What a config's launch needs of the machine, read from its source (nothing is run).

    >>> needs_of_source("model = dict(llm=dict(quantization_config=dict(load_in_4bit=True)), lora=dict(r=8))",
    ...                 Needs()).quantization
    True
"""

import ast
import dataclasses
from pathlib import Path

from xtuner_recipes.doctor import Needs
from xtuner_recipes.errors import RecipeError


def needs_of_config(path: Path, launch: Needs) -> Needs:
    """``launch`` (the command line's deepspeed and nodes) with what the config at ``path`` uses."""
    try:
        from xtuner_recipes.config_source import read

        source = read(path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RecipeError(f"cannot read {path}: {error}") from None
    return needs_of_source(source, launch, filename=str(path))


def needs_of_source(source: str, launch: Needs, filename: str = "<config>") -> Needs:
    from xtuner_recipes.config_source import flatten, imported_names, parse, uses_msagent_mapper

    try:
        tree = parse(source, filename)
    except SyntaxError as error:
        raise RecipeError(f"{filename} is not valid Python: invalid Python: {error.msg}") from None
    flat = flatten(tree)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} | imported_names(tree)
    sequence_parallel = (flat.get("sequence_parallel_size") or (1,))[0]
    return dataclasses.replace(
        launch,
        # a setting under quantization_config / lora, not `quantization_config=None` (no quantization)
        quantization=any("quantization_config" in key and value is not None for key, (value, _) in flat.items())
        or "BitsAndBytesConfig" in names,
        lora=any(key.startswith("model.lora") and value is not None for key, (value, _) in flat.items())
        or "LoraConfig" in names,
        paged_optimizer=any(name.startswith(("PagedAdamW", "PagedLion", "AdamW8bit", "Adam8bit")) for name in names),
        lagent=uses_msagent_mapper(tree),
        flash_attn=(flat.get("use_varlen_attn") or (False,))[0] is True
        or (isinstance(sequence_parallel, int) and sequence_parallel > 1),
        here=True,
    )
