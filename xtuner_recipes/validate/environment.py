"""Findings about the machine validating the config: warnings, errors with ``--strict-env``.

Configs are often checked off the training node, so by default these never fail a run.
"""

import contextlib
import importlib.util
import io

from xtuner_recipes.validate.findings import Finding


def check(ctx) -> tuple[list[Finding], dict]:
    return check_environment(quantized=ctx.raw("model.llm.quantization_config") is not None,
                             uses_lora=ctx.raw("model.lora") is not None, strict=ctx.options.strict_env), {}


def check_environment(*, quantized: bool, uses_lora: bool, strict: bool) -> list[Finding]:
    severity = "error" if strict else "warning"
    findings = []
    import torch

    if not torch.cuda.is_available():
        findings.append(Finding("E001", severity, "no CUDA GPU here: xtuner trains on GPUs",
                                hint="fine if you validate off the training node"))
    if quantized or uses_lora:
        try:
            # bitsandbytes prints its own banner on import; keep it out of our (JSON) output.
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                import bitsandbytes  # noqa: F401 - peft imports it to wrap a model in LoRA
        except Exception as error:  # noqa: BLE001 - e.g. "No module named 'triton.ops'" (bitsandbytes 0.45.0)
            findings.append(Finding("E002", severity, f"bitsandbytes fails to import: {error}",
                                    hint="pip install 'bitsandbytes>=0.45.1' (0.45.0 breaks next to triton >= 3.2)"))
    if importlib.util.find_spec("deepspeed") is None:
        findings.append(Finding("E003", severity, "deepspeed is not installed: `--deepspeed deepspeed_zero2` fails",
                                hint="pip install deepspeed"))
    elif importlib.util.find_spec("mpi4py") is None:
        findings.append(Finding("E004", severity, "mpi4py is not installed (deepspeed uses it for multi-node runs)"))
    return findings
