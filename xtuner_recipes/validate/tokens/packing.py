"""How many samples xtuner 0.2.0's packer makes of a dataset, from the samples' token lengths.

xtuner packs with ``dataset.map(Packer(max_length), batched=True, num_proc=map_num_proc)``:
the ``datasets`` library cuts the data into ``map_num_proc`` contiguous shards (fewer when
there are fewer rows), each worker feeds its shard to its own packer 1,000 rows a call, and
the packer emits whole ``max_length`` chunks, keeps the rest for the next call, emits a call's
tokens as one short sample when they don't fill a chunk, and drops what is left at the end
of its shard. ``shuffle_before_pack`` (the default) shuffles first, so the shards' sums — and the
count — change from run to run: ``count_range`` bounds every order, ``count`` is exact for one.
``tests/test_encoding.py`` holds both to what ``process_hf_dataset`` returns.

    >>> count([1500, 1500, 1500], chunk=2048, num_proc=1)
    2
    >>> count_range([1500, 1500, 1500], chunk=2048, num_proc=1, shuffle=True)  # one call: no short sample
    (2, 2)
"""

import math
from collections.abc import Sequence

BATCH = 1000  # datasets' default batch_size for map(batched=True)


def shards(rows: int, num_proc: int | None) -> list[tuple[int, int]]:
    """(start, end) of each shard, as ``Dataset.shard(num_shards, index, contiguous=True)`` cuts them."""
    workers = max(1, min(num_proc or 1, rows))
    size, extra = divmod(rows, workers)
    bounds, start = [], 0
    for index in range(workers):
        end = start + size + (1 if index < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


def count(lengths: Sequence[int], *, chunk: int, num_proc: int | None, batch: int = BATCH) -> int:
    """Packed samples of ``lengths`` in this order, fed to the packer ``batch`` rows a call."""
    total = 0
    for start, end in shards(len(lengths), num_proc):
        residual = 0
        for first in range(start, end, batch):
            tokens = residual + sum(lengths[first:min(first + batch, end)])
            if tokens >= chunk:
                total += tokens // chunk
                residual = tokens % chunk
            else:
                total += 1  # the call's tokens, short of a chunk, become one sample
                residual = 0
    return total


def count_range(lengths: Sequence[int], *, chunk: int, num_proc: int | None, shuffle: bool) -> tuple[int, int]:
    """(fewest, most) packed samples over every order the shuffle can give; one value without it.

    A shard of ``S`` tokens gives at least ``max(1, floor(S / chunk))`` samples (only its last
    residual is dropped) — summed over shards, at least ``floor(T / chunk) - (shards - 1)``. When
    every full call of 1,000 rows fills a chunk whatever rows it gets, only a shard's last call can
    give a short sample, so a shard gives at most ``ceil(S / chunk)`` — ``floor`` when even its last
    call's fewest rows fill a chunk; otherwise each call may add one. A shard's ``S`` lies between
    its row count's smallest and largest lengths summed.
    """
    if not shuffle:
        exact = count(lengths, chunk=chunk, num_proc=num_proc)
        return exact, exact
    if not lengths:
        return 0, 0
    import numpy as np

    bounds = shards(len(lengths), num_proc)
    ordered = np.sort(np.asarray(lengths, dtype=np.int64))
    prefix = np.concatenate(([0], np.cumsum(ordered))).tolist()  # Python ints: exact, and JSON-ready
    tokens = prefix[-1]
    sizes = [end - start for start, end in bounds]
    # Each shard alone: its n rows sum to at least the n smallest lengths and at most the n largest.
    low = max(sum(max(1, prefix[n] // chunk) for n in sizes), tokens // chunk - (len(bounds) - 1))
    if len(lengths) < BATCH or prefix[BATCH] >= chunk:  # every full call fills a chunk, whatever its rows
        # Only a shard's last call can then give a short sample, and not when its fewest rows fill a chunk.
        short = [n for n in sizes if n and prefix[n - BATCH * (math.ceil(n / BATCH) - 1)] < chunk]
        most = [tokens - prefix[len(ordered) - n] for n in sizes]
        high = sum(-(-m // chunk) if n in short else m // chunk for n, m in zip(sizes, most))
        high = min(high, tokens // chunk + len(short))
    else:
        calls = sum(math.ceil(n / BATCH) for n in sizes)
        high = tokens // chunk + calls
    return int(low), int(min(high, len(lengths)))
