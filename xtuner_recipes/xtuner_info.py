"""Facts about the installed xtuner, read from its source files without importing it.

Importing xtuner pulls in torch (about 2 s here); ``gen``, ``set`` and
``validate --level static`` must stay light, so they read the source instead.

    >>> "internlm2_chat" in prompt_template_names()
    True
"""

import ast
import importlib.util
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def source_dir() -> Path | None:
    """Where the installed xtuner's package lives, or None when it is not installed."""
    spec = importlib.util.find_spec("xtuner")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def _prompt_templates() -> dict[str, ast.expr]:
    """xtuner's ``PROMPT_TEMPLATE = ConfigDict(name=dict(...), ...)`` as name → source node."""
    root = source_dir()
    if root is None:
        return {}
    try:
        tree = ast.parse((root / "utils" / "templates.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "PROMPT_TEMPLATE" for t in node.targets)
            and isinstance(node.value, ast.Call)
        ):
            return {k.arg: k.value for k in node.value.keywords if k.arg}
    return {}


def prompt_template_names() -> frozenset[str]:
    """The names in xtuner's ``PROMPT_TEMPLATE`` (``xtuner/utils/templates.py``), empty if unknown."""
    return frozenset(_prompt_templates())


def prompt_template(name: str) -> dict | None:
    """``PROMPT_TEMPLATE.<name>`` as a dict of strings (and flags), when its source is all literals."""
    node = _prompt_templates().get(name)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict"):
        return None
    try:
        return {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    except (ValueError, SyntaxError, TypeError):
        return None


@lru_cache(maxsize=4)
def builder_defaults(name: str = "process_hf_dataset") -> dict:
    """The literal default of each keyword of xtuner's dataset builder ``name``
    (``xtuner/dataset/huggingface.py``): ``pack_to_max_length=True``, ``map_num_proc=32``…"""
    root = source_dir()
    try:
        tree = ast.parse((root / "dataset" / "huggingface.py").read_text(encoding="utf-8")) if root else None
    except (OSError, SyntaxError):
        tree = None
    function = next((node for node in (tree.body if tree else []) if isinstance(node, ast.FunctionDef)
                     and node.name == name), None)
    if function is None:
        return {}
    arguments = function.args.args
    defaults = {}
    for argument, default in zip(arguments[len(arguments) - len(function.args.defaults):], function.args.defaults):
        try:
            defaults[argument.arg] = ast.literal_eval(default)
        except ValueError:
            continue
    return defaults


@lru_cache(maxsize=1)
def _utils_values() -> dict:
    """The literal names xtuner's map functions import from ``xtuner.utils`` (``SYSTEM_TEMPLATE``,
    ``DEFAULT_IMAGE_TOKEN``…), read from ``utils/templates.py`` and ``utils/constants.py``."""
    from mmengine.config import ConfigDict

    values = {}
    for name in ("constants.py", "templates.py"):
        try:
            tree = ast.parse((source_dir() / "utils" / name).read_text(encoding="utf-8"))
        except (OSError, SyntaxError, TypeError):
            continue
        for node in tree.body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                continue
            try:
                if isinstance(node.value, ast.Call) and getattr(node.value.func, "id", None) == "ConfigDict":
                    values[node.targets[0].id] = ConfigDict(
                        {k.arg: ast.literal_eval(k.value) for k in node.value.keywords if k.arg})
                else:
                    values[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError):
                continue
    return values


@lru_cache(maxsize=64)
def map_function(name: str):
    """xtuner's dataset map function ``name`` (``oasst1_map_fn``…) compiled from its file under
    ``dataset/map_fns/dataset_map_fns/``, or None. Importing ``xtuner.dataset.map_fns`` runs
    ``xtuner/dataset/__init__.py``, which imports torch, transformers' models and every dataset
    class (about 5 s); the function itself needs only ``xtuner.utils``' literal templates, which
    are read from source. tests/test_xtuner_info.py holds each one equal to the imported one."""
    root = source_dir()
    folder = root / "dataset" / "map_fns" / "dataset_map_fns" if root else None
    if folder is None or not folder.is_dir():
        return None
    values = _utils_values()
    for path in sorted(folder.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        if not any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body):
            continue
        body = []
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xtuner"):
                if node.module != "xtuner.utils" or any(a.name not in values for a in node.names):
                    return None  # it needs more of xtuner than the literal templates
                body += [ast.parse(f"{a.asname or a.name} = __xtuner_utils__[{a.name!r}]").body[0] for a in node.names]
            else:
                body.append(node)
        namespace = {"__name__": f"xtuner.dataset.map_fns.dataset_map_fns.{path.stem}", "__xtuner_utils__": values}
        return run_own_code(body, path, namespace).get(name)
    return None


def run_own_code(body: list[ast.stmt], path: Path, namespace: dict) -> dict:
    """Run statements taken from xtuner's own file ``path`` (never data) in ``namespace``, and return it: its
    functions without importing their module, which imports torch and more (see ``map_function`` and
    ``validate.load.preflight.train_script_functions``; tests hold each to the imported one)."""
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102 - xtuner's installed code
    return namespace


def deepspeed_zero(value: str) -> tuple[int, bool, bool]:
    """The ZeRO stage and (optimizer, parameter) offload of ``xtuner train --deepspeed VALUE``: the JSON
    file xtuner's train script reads (a path, else the name of one of its presets: ``deepspeed_zero3`` →
    ``configs/deepspeed/deepspeed_zero3.json``)."""
    import json
    import os

    from xtuner_recipes.errors import RecipeError

    path = value
    if not os.path.isfile(path):
        from xtuner.configs import cfgs_name_path  # xtuner's own name → file table

        if value not in cfgs_name_path:
            raise RecipeError(f"--deepspeed {value}: no such file, and xtuner has no preset of that name "
                              "(it would fail: FileNotFoundError)", hint="deepspeed_zero1, deepspeed_zero2, "
                              "deepspeed_zero2_offload, deepspeed_zero3, deepspeed_zero3_offload or a JSON file")
        path = cfgs_name_path[value]
    try:
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecipeError(f"--deepspeed {value}: cannot read {path}: {error}") from None
    # DeepSpeed reads a config object, and refuses a stage it does not have (ZeroStageEnum): so does this.
    zero = config.get("zero_optimization", {}) if isinstance(config, dict) else None
    stage = zero.get("stage", 0) if isinstance(zero, dict) else None
    if not (isinstance(stage, int) and not isinstance(stage, bool) and 0 <= stage <= 3):
        what = (f"holds a JSON {type(config).__name__}, not an object" if not isinstance(config, dict) else
                "has a zero_optimization that is no object" if not isinstance(zero, dict) else
                f"sets zero_optimization.stage {stage!r}")
        raise RecipeError(f"--deepspeed {value}: {path} {what}: DeepSpeed takes an object whose "
                          "zero_optimization.stage is 0, 1, 2 or 3", hint="start from one of xtuner's presets "
                          "(xtuner/configs/deepspeed/deepspeed_zero2.json)")

    def on_cpu(key: str) -> bool:
        where = zero.get(key)
        return isinstance(where, dict) and where.get("device") in ("cpu", "nvme")

    return stage, stage >= 1 and on_cpu("offload_optimizer"), stage >= 3 and on_cpu("offload_param")
