"""Findings about the machine validating the config: warnings, errors with ``--strict-env``.

Configs are often checked off the training node, so by default these never fail a run. The
findings and their fixes are ``doctor``'s (:func:`xtuner_recipes.doctor.diagnose`), from the
probes that are cheap in this process; ``xtuner-recipes doctor`` runs them all.
"""

import dataclasses

from xtuner_recipes.findings import Finding
from xtuner_recipes.validate.checks import Result, check


@check("environment", level="full", codes=("E001", "E002", "E003", "E004", "E006", "E007", "E008", "E010", "E012"),
       reads=("settings", "launch", "options"), provides=("machine",))
def environment_check(settings, launch, options) -> Result:
    """The machine's findings (warnings: the config may be checked off the training node) and this machine's
    own verdict, doctor's: can it launch the config now."""
    lacking = machine_problems(quantized=settings.quantization_config is not None,
                               uses_lora=settings.lora is not None, deepspeed=launch.preset)
    findings = [dataclasses.replace(f, severity="error" if options.strict_env else "warning") for f in lacking]
    machine = {"ok": not lacking, "problems": [{"code": f.code, "message": f.message, "fix": f.hint}
                                               for f in lacking]}
    return Result(findings + _multi_node(), provides={"machine": machine})


def check_environment(*, quantized: bool, uses_lora: bool, strict: bool,
                      deepspeed: str | None = "deepspeed_zero2") -> list[Finding]:
    """The E findings ``validate`` reports: warnings, errors with ``strict``."""
    lacking = machine_problems(quantized=quantized, uses_lora=uses_lora, deepspeed=deepspeed)
    severity = "error" if strict else "warning"
    return [dataclasses.replace(f, severity=severity) for f in lacking] + _multi_node()


def machine_problems(*, quantized: bool, uses_lora: bool, deepspeed: str | None) -> list[Finding]:
    """What the launch needs and this machine lacks: doctor's errors, from the probes cheap in this process
    (version notes are doctor's alone)."""
    from xtuner_recipes.doctor import Needs, diagnose
    from xtuner_recipes.doctor.probe import quick

    needs = Needs(quantization=quantized, lora=uses_lora, deepspeed=deepspeed, here=True)
    return [f for f in diagnose(needs, quick()) if f.severity == "error"]


def _multi_node() -> list[Finding]:
    from xtuner_recipes.doctor import launch_environment

    return launch_environment(1)  # NNODES from the environment: the launch this shell would start
