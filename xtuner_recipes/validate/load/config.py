"""The L checks: mmengine loads the config (this runs it, as ``xtuner train`` would), its imports resolve, and it
defines what xtuner's train script needs.

mmengine reads xtuner configs in lazy-import mode: an import becomes a lazy object resolved when training
builds it. Building each one here turns a misspelt import into a finding now instead of an error after the
model has loaded.
"""

from collections.abc import Iterator

from xtuner_recipes.compat.mmengine import is_lazy, lazy_import, settings
from xtuner_recipes.findings import Finding
from xtuner_recipes.validate.checks import Result, check


def load(path: str):
    """``(config, findings)``; config is None when mmengine cannot load the file."""
    from mmengine.config import Config

    try:
        return Config.fromfile(path), []
    except Exception as error:  # noqa: BLE001 - any failure here is the user's config failing to load
        return None, [Finding("L001", "error", f"mmengine cannot load the config: {type(error).__name__}: {error}")]


@check("load", level="load", codes=("L001",), reads=("path", "tree"), provides=("config",))
def load_check(path: str, tree) -> Result:
    config, findings = load(path)
    return Result(findings, provides={"config": config})


def _raw_items(node, prefix: str) -> Iterator[tuple[str, object]]:
    """Walk a ConfigDict without building its lazy values (plain dict/list access)."""
    if isinstance(node, dict):
        for key, value in dict.items(node):
            yield from _raw_items(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from _raw_items(value, f"{prefix}.{index}")
    else:
        yield prefix, node


# Model code xtuner vendors against transformers' internals: its source names what it exports, but whether it
# imports depends on the installed transformers (xtuner 0.2.0's DeepSeek-V2 code imports a name transformers
# 4.48 no longer has), so a config that uses it is imported for real.
IMPORTED_FOR_REAL = ("xtuner.model.transformers_models",)


def _shown_by_source(value) -> bool:
    """True when the lazily imported name is visible in its module's source (see ``imports``)."""
    import sys

    from mmengine.config.lazy import LazyAttr

    from xtuner_recipes.validate.load.imports import defines

    chain = []
    while isinstance(value, LazyAttr):  # PROMPT_TEMPLATE.x, torch.float16: check the object they hang on
        chain.append(value.name)
        value = value.source
    modules, imported = lazy_import(value)
    if any(module.startswith(IMPORTED_FOR_REAL) for module in modules):
        return False
    if chain and all(module in sys.modules for module in modules):
        return False  # already imported: resolving `torch.float61` for real costs a getattr, and is exact
    if imported is None:  # `import torch`
        if chain:
            return defines(modules[0], chain[-1]) is True
        return all(module in sys.modules or defines(module, None) for module in modules)
    return defines(modules[0], imported) is True


def _source(value):
    """The lazy import a chain of attribute accesses hangs on."""
    from mmengine.config.lazy import LazyAttr

    while isinstance(value, LazyAttr):
        value = value.source
    return value


def resolve_imports(config) -> list[Finding]:
    """Resolve every lazily imported name; one finding per name that fails.

    Names their module's source shows are not imported (that costs seconds); the rest
    are built for real, so a misspelt or missing import reports Python's own error.
    """
    findings, failed = [], set()
    for key, value in _raw_items(settings(config), ""):
        if not is_lazy(value) or _shown_by_source(value):
            continue
        try:
            value.build()
        except Exception as error:  # noqa: BLE001 - ImportError, AttributeError, or the module's own failure
            message = str(error).splitlines()[0]
            if message not in failed:
                failed.add(message)
                vendored = any(m.startswith(IMPORTED_FOR_REAL) for m in lazy_import(_source(value))[0])
                hint = ("xtuner's own copy of this model's code does not import with the installed transformers: "
                        "load the model's own code instead (its hub repository, trust_remote_code=True)" if vendored
                        else "check the import's spelling, or install the package it needs")
                findings.append(Finding("L002", "error", message, key=key, hint=hint))
    return findings


@check("imports", level="load", codes=("L002",), reads=("config",))
def imports_check(config) -> Result:
    return Result(resolve_imports(config))


# What mmengine's Runner needs to train: without `model` Runner.from_cfg raises KeyError; without
# the other three, runner.train() raises "`self._train_loop` should not be None" after the model loaded.
REQUIRED = ("model", "train_dataloader", "train_cfg", "optim_wrapper")


# `framework = "huggingface"`: xtuner's train script builds `model` and `train_dataset` for HF's Trainer.
REQUIRED_HF = ("model", "train_dataset")


def is_huggingface(config) -> bool:
    framework = dict.get(settings(config), "framework", "mmengine")
    return isinstance(framework, str) and framework.lower() == "huggingface"


def required(config) -> list[Finding]:
    """One finding for each top-level setting xtuner's train script needs that the config lacks."""
    wanted = REQUIRED_HF if is_huggingface(config) else REQUIRED
    missing = [name for name in wanted if dict.get(settings(config), name) is None]
    if not missing:
        return []
    return [Finding("L003", "error", f"the config defines no {', '.join(missing)}: xtuner train cannot train it",
                    key=missing[0], hint="start from `xtuner copy-cfg` or `xtuner-recipes gen`")]


@check("required", level="load", codes=("L003",), reads=("config",))
def required_check(config) -> Result:
    return Result(required(config))
