"""Rows as the datasets library hands them to a map function: every row has every column.

xtuner reads JSON data with ``load_dataset("json", ...)``, which makes one table of the file: a key
that some rows have becomes a column, and the rows without it get None there (datasets 3.x, which
xtuner 0.2.0 pins, and 5.x alike; tests/test_columns.py compares with the installed datasets on
generated rows). A map function sees ``{"text": None}`` where the file had no ``text``, so
``validate`` maps the rows the same way. Nested objects are left as they are: datasets 3.x also
fills their missing keys, 5.x keeps them as JSON.

    >>> with_columns({"b": "x"}, ["a", "b"])
    {'a': None, 'b': 'x'}
"""

from collections.abc import Iterable
from pathlib import Path

from xtuner_recipes.rows import read_rows


def columns(files: Iterable[str], limit: int | None = None) -> list[str]:
    """The top-level keys of the objects in ``files`` (the first ``limit`` rows), in the order they first appear."""
    return survey(files, limit)[0]


def survey(files: Iterable[str], limit: int | None = None) -> tuple[list[str], dict[str, dict[str, list]]]:
    """``(columns, mixed)`` in one read: ``mixed`` maps each field that is text in some rows and a number or a
    boolean in others to ``{"text": [where, ...], "other": [...]}`` (``file:line`` of the first few of each): one column
    of two types, which datasets 3.2 (xtuner's pin) cannot build (pyarrow's ArrowInvalid).

        >>> import json, tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        ...     _ = f.write(json.dumps({"a": "x", "b": 1}) + "\\n" + json.dumps({"a": "y", "b": "two"}) + "\\n")
        >>> keys, mixed = survey([f.name])
        >>> keys, sorted(mixed), [where.rsplit(":", 1)[1] for where in mixed["b"]["text"]]
        (['a', 'b'], ['b'], ['2'])
    """
    seen: dict[str, None] = {}
    kinds: dict[str, dict[str, list]] = {}
    rows = (row for path in files for row in read_rows(Path(path).expanduser()))
    for count, row in enumerate(rows, start=1):
        if limit is not None and count > limit:
            break
        if isinstance(row.record, dict) and not row.error:
            for key, value in row.record.items():
                seen.setdefault(key, None)
                kind = "text" if isinstance(value, str) else "other" if isinstance(value, int | float) else None
                if kind:
                    found = kinds.setdefault(key, {"text": [], "other": []})[kind]
                    if len(found) < 3:
                        found.append(row.where)
    return list(seen), {key: found for key, found in kinds.items() if found["text"] and found["other"]}


def with_columns(record, keys: list[str]):
    """``record`` with each of ``keys`` it lacks set to None, in the columns' order; anything else unchanged."""
    if not isinstance(record, dict) or len(record) == len(keys):
        return record  # every key of a row is among the columns: as many means the same
    return {key: record.get(key) for key in keys}
