"""Is this machine's training stack able to run a launch? ``doctor`` and ``validate``'s E-findings.

The probes run in a child process (:mod:`xtuner_recipes.doctor.probe`); :func:`diagnose` turns
their results and what the launch needs (:class:`Needs`) into findings, each problem with the
command that fixes it. Without a config the launch is the tutorial's: QLoRA under
``--deepspeed deepspeed_zero2``.

    >>> findings = diagnose(Needs(), {"versions": {}, "probes": {"torch": {"ok": True, "cuda": False}}})
    >>> [(f.code, f.severity) for f in findings][:1]
    [('E001', 'warning')]
"""

import dataclasses
import json
import os
import subprocess
import sys

from xtuner_recipes.doctor.fixes import fix_for, why
from xtuner_recipes.findings import Finding

PROBE_SECONDS = 300  # importing the whole stack cold (xtuner's train script, deepspeed) takes ~20 s here


@dataclasses.dataclass(frozen=True)
class Needs:
    """What a launch uses. ``here``: it runs on this machine (a config was named), so no GPU is an error."""

    quantization: bool = True
    lora: bool = True
    paged_optimizer: bool = False
    deepspeed: str | None = "deepspeed_zero2"
    nodes: int = 1
    lagent: bool = False
    flash_attn: bool = False
    here: bool = False


def run_probes(names: list[str] | None = None, *, python: str | None = None) -> dict:
    """The probes' JSON from a child process of ``python`` (default: this interpreter)."""
    command = [python or sys.executable, "-P", "-m", "xtuner_recipes.doctor.probe", *(names or [])]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_SECONDS, check=False,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired:
        return {"versions": {}, "probes": {}, "failure": f"the probes ran past {PROBE_SECONDS} s"}
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return {"versions": {}, "probes": {}, "failure": f"the probe process died: {tail[0]}"}


def diagnose(needs: Needs, found: dict) -> list[Finding]:
    """Findings for ``found`` (the probes' JSON) and a launch that ``needs`` what it says."""
    probes, versions = found.get("probes", {}), found.get("versions", {})
    findings = []
    if found.get("failure"):
        findings.append(Finding("E012", "error", f"the training stack could not be probed: {found['failure']}"))

    def broken(name: str, code: str, what: str, needed: bool = True):
        result = probes.get(name)
        if result is None or result.get("ok"):
            return
        state = "is not installed" if result.get("missing") else f"fails to import: {result.get('error')}"
        cause = why(name, result, versions)
        findings.append(Finding(code, "error" if needed else "warning",
                                f"{name} {state} ({what})" + (f". {cause}" if cause else ""),
                                hint=fix_for(name, result, versions)))

    broken("torch", "E006", "every launch")
    broken("torchvision", "E006", "xtuner.dataset imports it")
    broken("xtuner", "E007", "`xtuner train` imports its train script")
    torch = probes.get("torch", {})
    if torch.get("ok") and not torch.get("cuda"):
        findings.append(Finding("E001", "error" if needs.here else "warning", "no CUDA GPU on this machine: xtuner "
                                "trains on GPUs (AmpOptimWrapper and 4-bit quantization refuse a CPU)"
                                + ("" if needs.here else "; fine if you check off the training node")))
    if probes.get("xtuner", {}).get("v1"):
        findings.append(Finding("E008", "error", "this xtuner is XTuner V1 (xtuner.v1), which has no LoRA/QLoRA",
                                hint=fix_for("xtuner-v1", {}, versions)))
    broken("bitsandbytes", "E002", "peft imports it to wrap a model in LoRA; QLoRA quantizes with it",
           needed=needs.quantization or needs.lora or needs.paged_optimizer)
    if needs.deepspeed:
        broken("deepspeed", "E003", f"`--deepspeed {needs.deepspeed}` starts it")
    else:
        broken("deepspeed", "E003", "for `--deepspeed`", needed=False)
    broken("mpi4py", "E004", "deepspeed uses it for multi-node runs", needed=needs.nodes > 1 and bool(needs.deepspeed))
    if needs.flash_attn:
        broken("flash_attn", "E005", "varlen attention and sequence parallel need it")
    if needs.lagent:
        broken("lagent", "E009", "`xtuner chat --lagent` imports it")
        if not os.environ.get("SERPER_API_KEY"):
            findings.append(Finding("E009", "warning", "SERPER_API_KEY is not set: `xtuner chat --lagent` exits "
                                    "without it", hint="export SERPER_API_KEY=... (a key from serper.dev)"))
    findings += launch_environment(needs.nodes)
    findings += _pin_findings(versions)
    return findings


def launch_environment(nodes: int, environ=None) -> list[Finding]:
    """E010: a launch over several nodes needs the same PORT and ADDR on each node and its own NODE_RANK.
    xtuner's entry point picks a random PORT on each node when it is unset, uses 127.0.0.1 for ADDR and
    rank 0 for NODE_RANK: the nodes wait for each other until torchrun's rendezvous times out.

        >>> [f.code for f in launch_environment(2, {"NNODES": "2"})]
        ['E010']
        >>> launch_environment(2, {"NNODES": "2", "PORT": "29500", "ADDR": "10.0.0.1", "NODE_RANK": "1"})
        []
    """
    # os.environ read at the call, not bound at import: datasets' map(num_proc=…) rebinds it to a copy
    environ = os.environ if environ is None else environ
    try:
        nodes = max(nodes, int(environ.get("NNODES", 1)))
    except ValueError:
        return []  # train says what is wrong with NNODES
    missing = [name for name in ("PORT", "ADDR", "NODE_RANK") if not environ.get(name)]
    if nodes < 2 or not missing:
        return []
    fallback = {"PORT": "a random PORT on each node", "ADDR": "ADDR 127.0.0.1 (each node itself)",
                "NODE_RANK": "NODE_RANK 0 on every node"}
    return [Finding("E010", "warning", f"a launch over {nodes} nodes without {', '.join(missing)} set: xtuner then "
                    f"takes {', '.join(fallback[name] for name in missing)}, and the nodes never meet",
                    hint="on every node: NNODES=%d NODE_RANK=<0..%d> ADDR=<node 0's address> PORT=29500 "
                         "(`xtuner-recipes plan CONFIG --nodes %d` prints the commands)" % (nodes, nodes - 1, nodes))]


def _pin_findings(versions: dict) -> list[Finding]:
    """A version other than xtuner's own pin: a warning (it may work: bitsandbytes 0.45.1+ does)."""
    from xtuner_recipes.doctor.fixes import xtuner_pins

    findings = []
    for name, pinned in xtuner_pins().items():
        installed = versions.get(name)
        if installed is not None and installed != pinned:
            findings.append(Finding("E011", "warning", f"{name} {installed} is installed; xtuner "
                                    f"{versions.get('xtuner')} pins {name}=={pinned}"))
    return findings
