"""The settings schema (``schemas/settings.schema.json``), shared by the rewriter and the validator.

    >>> setting_errors("lr", "abc")
    ["lr: 'abc' is not of type 'number'"]
    >>> setting_errors("model.lora.r", 16)
    []
    >>> setting_errors("batch_size", 2.0)
    ["batch_size: 2.0 is not of type 'integer'"]
"""

import json
import re
from functools import lru_cache

from xtuner_recipes.resources import resource_path
from xtuner_recipes.values import is_int, is_number


@lru_cache(maxsize=1)
def _validator():
    # jsonschema is imported here, not at module level, to keep `--help` instant.
    import jsonschema

    schema = json.loads(resource_path("schemas", "settings.schema.json").read_text(encoding="utf-8"))
    # Types as the consumers take them: torch's sampler refuses batch_size=2.0, which JSON
    # Schema counts as an integer; an infinite lr or max_norm is no number training can use.
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many({
        "integer": lambda _, value: is_int(value),
        "number": lambda _, value: is_number(value),
    })
    strict = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    return strict(schema)


def to_json_value(value):
    """Tuples become lists (JSON has no tuple); everything else is kept."""
    if isinstance(value, tuple | list):
        return [to_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json_value(item) for key, item in value.items()}
    return value


def setting_errors(key: str, value) -> list[str]:
    """Messages for ``value`` breaking the schema's rule for ``key`` (empty when fine or unknown)."""
    instance = {key: to_json_value(value)}
    return [f"{key}: {error.message}" for error in _validator().iter_errors(instance)]


def is_known(key: str) -> bool:
    """Whether the schema has a rule for ``key``."""
    return bool(_validator().schema["properties"].get(key)) or any(
        re.match(pattern, key) for pattern in _validator().schema["patternProperties"]
    )


def expects_string(key: str) -> bool:
    """Whether the schema's rule for ``key`` asks for a string."""
    rule = _validator().schema["properties"].get(key, {})
    if "$ref" in rule:
        rule = _validator().schema["$defs"][rule["$ref"].rsplit("/", 1)[1]]
    return rule.get("type") == "string"
