"""Findings about the machine validating the config: warnings, errors with ``--strict-env``.

Configs are often checked off the training node, so by default these never fail a run. The
findings and their fixes are ``doctor``'s (:func:`xtuner_recipes.doctor.diagnose`), from the
probes that are cheap in this process; ``xtuner-recipes doctor`` runs them all.
"""

import dataclasses

from xtuner_recipes.findings import Finding
from xtuner_recipes.validate.checks import Result, check


@check("environment", level="full", codes=("E001", "E002", "E003", "E004", "E006", "E007", "E008", "E010", "E012"),
       reads=("settings", "launch", "options"))
def environment_check(settings, launch, options) -> Result:
    return Result(check_environment(quantized=settings.quantization_config is not None,
                                    uses_lora=settings.lora is not None, strict=options.strict_env,
                                    deepspeed=launch.preset))


def check_environment(*, quantized: bool, uses_lora: bool, strict: bool,
                      deepspeed: str | None = "deepspeed_zero2") -> list[Finding]:
    from xtuner_recipes.doctor import Needs, diagnose, launch_environment
    from xtuner_recipes.doctor.probe import quick

    needs = Needs(quantization=quantized, lora=uses_lora, deepspeed=deepspeed, here=True)
    severity = "error" if strict else "warning"
    # What the launch needs and this machine lacks (doctor's errors); version notes are doctor's alone.
    lacking = [dataclasses.replace(f, severity=severity) for f in diagnose(needs, quick()) if f.severity == "error"]
    return lacking + launch_environment(1)  # NNODES from the environment: the launch this shell would start
