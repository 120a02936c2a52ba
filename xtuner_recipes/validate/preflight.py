"""Do what ``xtuner train`` does with a loaded config before it builds the model, with xtuner's own code.

``xtuner/tools/train.py`` registers the functions a config defines (``register_function``), runs
its ``check_cfg`` rules (varlen attention needs batch size 1, sequence-parallel divisibility, …),
and mmengine's Runner logs ``cfg.pretty_text`` before it builds the model: a value it can't print
("Failed to format the config file") stops training there. Each failure is a finding here.
"""

import argparse
import copy

from xtuner_recipes.validate.findings import Finding

NEEDS_HERE = ("flash_attn", "flash-attn")  # failures that depend on what this machine has installed


def check(ctx, *, deepspeed: str | None = "deepspeed_zero2") -> tuple[list[Finding], dict]:
    """``deepspeed``: the launch's ``--deepspeed`` (check_cfg refuses sequence parallel without it)."""
    try:
        from xtuner.tools.train import check_cfg, register_function
    except Exception as error:  # noqa: BLE001 - xtuner's own train script can't import here
        return [Finding("L003", "info", f"xtuner's train script does not import here ({type(error).__name__}: "
                        f"{error}): its config checks were not run")], {}
    cfg = copy.deepcopy(ctx.config)
    findings = []
    try:
        register_function(cfg._cfg_dict)
        check_cfg(cfg, argparse.Namespace(deepspeed=deepspeed))
    except Exception as error:  # noqa: BLE001 - the user's config failing xtuner's own rules
        message = str(error) or type(error).__name__
        here = any(word in message for word in NEEDS_HERE)
        findings.append(Finding("E005" if here else "L003", "warning" if here else "error",
                                f"xtuner train stops before the model loads: {type(error).__name__}: {message}",
                                hint="install flash-attn on the training machine" if here else None))
        return findings, {}
    try:
        printable(cfg)
    except Exception as error:  # noqa: BLE001 - mmengine's formatter failing on a value
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        findings.append(Finding(
            "L004", "error", f"the Runner cannot print the config before building the model ({first}): a value in "
            "it is no Python literal, import or registered function", hint="define classes and helpers in a module "
            "and import them in the config; mmengine keeps imports, not objects"))
    return findings, {}


def printable(cfg) -> str:
    """``cfg.pretty_text`` as the Runner computes it, failing where it fails, without yapf's formatting.

    mmengine writes the config as Python text, then formats it with yapf, and raises "Failed to format
    the config file" when yapf can't parse it. Parsing the same text with yapf's own parser fails on
    the same configs (tests/test_preflight.py compares both on generated configs) at a fifth of the cost.
    """
    from yapf.pytree import pytree_utils

    object.__setattr__(cfg, "_format_python_code", False)  # Config.__setattr__ would store it as a setting
    text = cfg.pretty_text
    try:
        pytree_utils.ParseCodeToTree(text)
    except Exception as error:  # noqa: BLE001 - yapf's parser raises its own error types
        raise SyntaxError(f"Failed to format the config file: {error}") from None
    return text
