"""Load the config with mmengine (this runs it, as ``xtuner train`` would) and resolve its imports.

mmengine reads xtuner configs in lazy-import mode: an import becomes a lazy object
resolved when training builds it. Building each one here turns a misspelt import
into a finding now instead of an error after the model has loaded.
"""

from collections.abc import Iterator

from xtuner_recipes.validate.findings import Finding


def load(path: str):
    """``(config, findings)``; config is None when mmengine cannot load the file."""
    from mmengine.config import Config

    try:
        return Config.fromfile(path), []
    except Exception as error:  # noqa: BLE001 - any failure here is the user's config failing to load
        return None, [Finding("L001", "error", f"mmengine cannot load the config: {type(error).__name__}: {error}")]


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


def _shown_by_source(value) -> bool:
    """True when the lazily imported name is visible in its module's source (see ``imports``)."""
    import sys

    from mmengine.config.lazy import LazyAttr

    from xtuner_recipes.validate.imports import defines

    while isinstance(value, LazyAttr):  # PROMPT_TEMPLATE.x, torch.float16: check the object they hang on
        value = value.source
    modules = value._module if isinstance(value._module, list | tuple) else [value._module]
    if value._imported is None:  # `import torch`
        return all(module in sys.modules or defines(module, None) for module in modules)
    return defines(modules[0], value._imported) is True


def resolve_imports(config) -> list[Finding]:
    """Resolve every lazily imported name; one finding per name that fails.

    Names their module's source shows are not imported (that costs seconds); the rest
    are built for real, so a misspelt or missing import reports Python's own error.
    """
    from mmengine.config.lazy import LazyAttr, LazyObject

    findings, failed = [], set()
    for key, value in _raw_items(config._cfg_dict, ""):
        if not isinstance(value, LazyObject | LazyAttr) or _shown_by_source(value):
            continue
        try:
            value.build()
        except Exception as error:  # noqa: BLE001 - ImportError, AttributeError, or the module's own failure
            message = str(error).splitlines()[0]
            if message not in failed:
                failed.add(message)
                findings.append(Finding("L002", "error", message, key=key,
                                        hint="check the import's spelling, or install the package it needs"))
    return findings


def lookup(config, key: str):
    """``config`` at a dotted ``key`` (building lazy objects on the way), or None."""
    node = config
    for part in key.split("."):
        try:
            node = node[int(part)] if isinstance(node, list | tuple) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            return None
    return node
