"""Do what ``xtuner train`` does with a loaded config before it builds the model, with xtuner's own code.

``xtuner/tools/train.py`` registers the functions a config defines (``register_function``), runs
its ``check_cfg`` rules (varlen attention needs batch size 1, sequence-parallel divisibility, …),
and mmengine's Runner logs ``cfg.pretty_text`` before it builds the model: a value it can't print
("Failed to format the config file") stops training there. Each failure is a finding here.
"""

import argparse
import ast
import builtins
import copy
import functools
import types

from xtuner_recipes.compat.mmengine import settings, unformatted_text
from xtuner_recipes.findings import Finding
from xtuner_recipes.validate.checks import Result, check

NEEDS_HERE = ("flash_attn", "flash-attn")  # failures that depend on what this machine has installed


@check("preflight", level="full", codes=("L003", "L004", "E005"), reads=("config", "launch"))
def preflight_check(config, launch) -> Result:
    """What xtuner's train script does before it builds the model, for ``launch``: check_cfg refuses
    sequence parallel without ``--deepspeed`` (``launch.preset`` None)."""
    return Result(preflight(config, deepspeed=launch.preset))


def preflight(config, *, deepspeed: str | None) -> list[Finding]:
    """Findings of xtuner's ``register_function`` and ``check_cfg`` (run with ``--deepspeed deepspeed``) and of
    the Runner's ``cfg.pretty_text`` on a copy of the loaded ``config``."""
    try:
        register_function, check_cfg = train_script_functions()
    except Exception as error:  # noqa: BLE001 - xtuner's own train script can't be read or imported here
        return [Finding("L003", "info", f"xtuner's train script does not load here ({type(error).__name__}: "
                        f"{error}): its config checks were not run")]
    cfg = copy.deepcopy(config)
    try:
        register_function(settings(cfg))
        check_cfg(cfg, argparse.Namespace(deepspeed=deepspeed))
    except Exception as error:  # noqa: BLE001 - the user's config failing xtuner's own rules
        message = str(error) or type(error).__name__
        here = any(word in message for word in NEEDS_HERE)
        return [Finding("E005" if here else "L003", "warning" if here else "error",
                        f"xtuner train stops before the model loads: {type(error).__name__}: {message}",
                        hint="install flash-attn on the training machine" if here else None)]
    try:
        printable(cfg)
    except Exception as error:  # noqa: BLE001 - mmengine's formatter failing on a value
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return [Finding(
            "L004", "error", f"the Runner cannot print the config before building the model ({first}): a value in "
            "it is no Python literal, import or registered function", hint="define classes and helpers in a module "
            "and import them in the config; mmengine keeps imports, not objects")]
    return []


USED = ("FunctionType", "MAP_FUNC", "SUPPORT_FLASH2")  # the module-level names the two functions read


@functools.lru_cache(maxsize=1)
def train_script_functions():
    """xtuner's own ``register_function`` and ``check_cfg``, compiled from ``xtuner/tools/train.py`` with
    the module-level names they read, without importing the script: it imports peft, mmengine's
    runner and xtuner's models first (4 s here). tests/test_preflight.py checks both against the
    imported script. A script whose functions read other names is imported for real."""
    from xtuner_recipes.xtuner_info import run_own_code, source_dir

    path = source_dir() / "tools" / "train.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("register_function",
                                                                                              "check_cfg")}
    nodes = [n for f in found.values() for n in ast.walk(f)]
    local = ({n.arg for n in nodes if isinstance(n, ast.arg)} | set(found)
             | {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)})
    read = {n.id for n in nodes if isinstance(n, ast.Name)} - local - set(dir(builtins))
    if len(found) != 2 or not read <= set(USED):
        from xtuner.tools.train import check_cfg, register_function

        return register_function, check_cfg
    from xtuner.registry import MAP_FUNC

    # xtuner's SUPPORT_FLASH2 is transformers' is_flash_attn_2_available() (xtuner/model/modules/dispatch);
    # check_cfg reads it only for varlen attention or sequence parallel, so transformers is imported then.
    namespace = {"FunctionType": types.FunctionType, "MAP_FUNC": MAP_FUNC, "SUPPORT_FLASH2": _FlashAttention2()}
    run_own_code(list(found.values()), path, namespace)
    return namespace["register_function"], namespace["check_cfg"]


class _FlashAttention2:
    """Truthy when transformers finds flash-attn 2, asked on first use (importing transformers costs 0.25 s)."""

    def __bool__(self) -> bool:
        from transformers.utils import is_flash_attn_2_available

        return bool(is_flash_attn_2_available())


def printable(cfg) -> str:
    """``cfg.pretty_text`` as the Runner computes it, failing where it fails, without yapf's formatting.

    mmengine writes the config as Python text, then formats it with yapf, and raises "Failed to format
    the config file" when yapf can't parse it. Parsing the same text with yapf's own parser fails on
    the same configs (tests/test_preflight.py compares both on generated configs) at a fifth of the cost.
    """
    from yapf.pytree import pytree_utils

    text = unformatted_text(cfg)
    try:
        pytree_utils.ParseCodeToTree(text)
    except Exception as error:  # noqa: BLE001 - yapf's parser raises its own error types
        raise SyntaxError(f"Failed to format the config file: {error}") from None
    return text
