"""Checks for records already in xtuner's conversation form.

    >>> conversation_or_none({"conversation": [{"input": "hi", "output": "hello"}]})
    [{'input': 'hi', 'output': 'hello'}]
"""

from collections.abc import Mapping

from xtuner_recipes.map_fns.errors import MapFnError

_TURN_KEYS = {"system", "input", "output"}


def conversation_or_none(record: dict, error: type[MapFnError] = MapFnError) -> list[dict] | None:
    """The record's conversation when it has one (checked), else None.

    A conversation is a non-empty list of turns; a turn is an object whose
    ``output`` is a string and whose ``system`` and ``input``, if present, are strings.
    """
    if record.get("conversation") is None:  # absent, or None where the datasets library filled the column in
        return None
    turns = record["conversation"]
    if not isinstance(turns, list) or not turns:
        raise error(f"'conversation' must be a non-empty list of turns, got {type(turns).__name__}")
    clean = []
    for number, turn in enumerate(turns, start=1):
        if not isinstance(turn, Mapping):
            raise error(f"conversation turn {number} must be an object, got {type(turn).__name__}")
        if not isinstance(turn.get("output"), str):
            raise error(f"conversation turn {number} needs a string 'output'")
        for key in ("system", "input"):
            if key in turn and not isinstance(turn[key], str | None):
                raise error(f"conversation turn {number}: {key!r} must be a string")
        clean.append({key: value for key, value in turn.items() if key in _TURN_KEYS and value is not None})
    return clean


def passed_through(record, error: type[MapFnError]) -> dict | None:
    """``{"conversation": …}`` for a record already in conversation form, None for a raw record;
    ``error`` for anything that is not an object or whose conversation is malformed."""
    if not isinstance(record, Mapping):
        raise error(f"a record must be an object, got {type(record).__name__}")
    turns = conversation_or_none(record, error)
    return None if turns is None else {"conversation": turns}
