"""What ``calibrate`` times besides training steps, and how it times: the median of repeated steps after a warm-up,
the device's memory bandwidth, the scratch disk's write speed, the host's pace issuing small ops and its round trip
to the device; and the undoing of the CPU stand-ins it uses."""

import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

REPEATS = {"cuda": 7, "cpu": 3}
COPY_BYTES = {"cuda": 1 << 30, "cpu": 64 << 20}
WRITE_BYTES = {"cuda": 512 << 20, "cpu": 32 << 20}


def median_seconds(step, repeats: int, device: str) -> list[float]:
    import torch

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up: kernels chosen, the allocator's pools made
    step()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return times


def bandwidth_gbs(device: str) -> float:
    """Bytes a second the device's memory moves: a copy reads and writes each byte once."""
    import torch

    size = COPY_BYTES[device]
    source = torch.empty(size // 2, dtype=torch.float16, device=device).fill_(1.0)
    target = torch.empty_like(source)
    times = median_seconds(lambda: target.copy_(source), REPEATS[device], device)
    return round(2 * size / statistics.median(times) / 1e9, 1)


HOST_OPS = 2000  # small ops a burst of the host probe


def host_op_us(device: str) -> float:
    """Microseconds the host takes to issue one small op on ``device`` (an in-place add on eight numbers, the
    device never the bottleneck): the pace a host-bound iteration runs at, recorded beside each time measured so
    that the host's cost a call can be compared between machines."""
    import torch

    value = torch.zeros(8, device=device)

    def burst():
        for _ in range(HOST_OPS):
            value.add_(1.0)

    times = median_seconds(burst, REPEATS[device], device)
    return round(statistics.median(times) / HOST_OPS * 1e6, 2)


SYNC_TRIPS = 200  # round trips a burst of the sync probe


def host_sync_us(device: str) -> float:
    """Microseconds of one round trip between the host and the device: a small op, then ``nonzero``, whose result's
    size the host must wait for (as transformers' expert loops do once an expert). Kept beside ``host_op_us``: a
    routed expert's cost follows the round trip, which the launch rate alone does not time (#25: OLMoE ran 1.5x
    slower on a host the launch probe put at 1.2-1.4x)."""
    import torch

    value = torch.zeros(8, device=device)

    def burst():
        for _ in range(SYNC_TRIPS):
            value.add_(1.0).nonzero()

    times = median_seconds(burst, REPEATS[device], device)
    return round(statistics.median(times) / SYNC_TRIPS * 1e6, 2)


def write_gbs(folder: Path, device: str) -> float:
    """The scratch disk's write speed: a file written and synced (then removed)."""
    size = WRITE_BYTES[device]
    block = os.urandom(1 << 20)
    handle, name = tempfile.mkstemp(prefix=".calibrate-", dir=folder)
    try:
        start = time.perf_counter()
        with os.fdopen(handle, "wb") as out:
            for _ in range(size >> 20):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        return round(size / (time.perf_counter() - start) / 1e9, 2)
    finally:
        Path(name).unlink(missing_ok=True)


@contextlib.contextmanager
def restored():
    """Undo the CPU stand-ins (``smoke.adapt.patch_runtime``) when the measurement ends: the caller's process
    (a test's, a notebook's) keeps its own torch and imports."""
    import sys

    import torch

    module, had = sys.modules.get("bitsandbytes"), "bitsandbytes" in sys.modules
    stand_in = getattr(torch.cpu, "is_bf16_supported", None)
    try:
        yield
    finally:
        if had:
            sys.modules["bitsandbytes"] = module
        else:
            sys.modules.pop("bitsandbytes", None)
        if stand_in is None and hasattr(torch.cpu, "is_bf16_supported"):
            del torch.cpu.is_bf16_supported


def version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
