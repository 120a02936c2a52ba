"""Stable ids and a seeded split that does not depend on the order of the input.

A record's id is a hash of its conversation, so the same question always gets the same
id. The test split is the ``round(n × ratio)`` ids with the smallest ``sha256(seed:id)``:
the same records for the same seed, however the input is ordered.

    >>> record_id("medqa", [{"input": "q", "output": "a"}])
    'medqa-eed3e6a169ec6eff'
"""

import hashlib
import json
from array import array


def canonical(conversation: list[dict]) -> str:
    return json.dumps(conversation, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def record_id(task: str, conversation: list[dict]) -> str:
    return f"{task}-{hashlib.sha256(canonical(conversation).encode()).hexdigest()[:16]}"


def split_key(seed: int, identifier: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{identifier}".encode()).digest()[:8], "big")


def test_cutoff(keys, ratio: float) -> int:
    """The largest key that goes to the test split (-1: none do)."""
    import numpy as np

    count = round(len(keys) * ratio)
    if count <= 0:
        return -1
    return int(np.partition(np.frombuffer(keys, dtype=np.uint64) if isinstance(keys, array) else
                            np.asarray(keys, dtype=np.uint64), count - 1)[count - 1])


def first_occurrences(hashes: array) -> array:
    """For each position, 1 when its hash appears there first, else 0 (a duplicate of an earlier one)."""
    import numpy as np

    values = np.frombuffer(hashes, dtype=np.uint64)
    order = np.argsort(values, kind="stable")  # equal hashes keep input order: the first one leads
    repeated = values[order[1:]] == values[order[:-1]]
    keep = np.ones(len(values), dtype=np.uint8)
    keep[order[1:][repeated]] = 0
    return array("B", keep.tobytes())
