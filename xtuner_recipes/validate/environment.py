"""Findings about the machine validating the config: warnings, errors with ``--strict-env``.

Configs are often checked off the training node, so by default these never fail a run. The
findings and their fixes are ``doctor``'s (:func:`xtuner_recipes.doctor.diagnose`), from the
probes that are cheap in this process; ``xtuner-recipes doctor`` runs them all.
"""

import dataclasses

from xtuner_recipes.validate.findings import Finding


def check(ctx) -> tuple[list[Finding], dict]:
    return check_environment(quantized=ctx.raw("model.llm.quantization_config") is not None,
                             uses_lora=ctx.raw("model.lora") is not None, strict=ctx.options.strict_env), {}


def check_environment(*, quantized: bool, uses_lora: bool, strict: bool) -> list[Finding]:
    from xtuner_recipes.doctor import Needs, diagnose, launch_environment
    from xtuner_recipes.doctor.probe import quick

    needs = Needs(quantization=quantized, lora=uses_lora, deepspeed="deepspeed_zero2", here=True)
    severity = "error" if strict else "warning"
    # What the launch needs and this machine lacks (doctor's errors); version notes are doctor's alone.
    lacking = [dataclasses.replace(f, severity=severity) for f in diagnose(needs, quick()) if f.severity == "error"]
    return lacking + launch_environment(1)  # NNODES from the environment: the launch this shell would start
