"""Stable ids and a seeded split that does not depend on the order of the input.

A record's id is a hash of its conversation, so the same question always gets the same
id. The test split is the ``round(n × ratio)`` ids with the smallest ``sha256(seed:id)``:
the same records for the same seed, however the input is ordered.

    >>> record_id("medqa", [{"input": "q", "output": "a"}])
    'medqa-eed3e6a169ec6eff'
"""

import hashlib
import json


def canonical(conversation: list[dict]) -> str:
    return json.dumps(conversation, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def record_id(task: str, conversation: list[dict]) -> str:
    return f"{task}-{hashlib.sha256(canonical(conversation).encode()).hexdigest()[:16]}"


def split_key(seed: int, identifier: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{identifier}".encode()).digest()[:8], "big")


def test_cutoff(keys: list[int], ratio: float) -> int:
    """The largest key that goes to the test split (-1: none do)."""
    count = round(len(keys) * ratio)
    if count <= 0:
        return -1
    return sorted(keys)[count - 1]
