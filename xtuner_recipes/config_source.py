"""A config's source read with ``ast``, never run: its top-level settings, their literal values and lines.

The rewriter edits configs with libcst; everything else that reads a config without loading it (the
static checks, ``plan``, ``doctor``, ``smoke``) reads it through these functions.

    >>> tree = parse("lr = 2e-4\\nmodel = dict(lora=dict(r=64))\\n")
    >>> flatten(tree)["model.lora.r"]
    (64, 2)
    >>> line_of(flatten(tree), tree, "lr")
    1
"""

import ast
from collections.abc import Iterator


def read(path) -> str:
    """A config's text. A folder, FIFO or device is refused (ValueError) rather than read, or waited on forever;
    a config past ``paths.max_config_bytes`` raises RecipeError (a limit of this tool's: exit 2)."""
    import os
    import stat
    from pathlib import Path

    from xtuner_recipes.paths import refuse_large_config

    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise ValueError(f"{path} is a directory, not a config file")
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file")
    refuse_large_config(path, os.stat(path).st_size)
    return Path(path).read_text(encoding="utf-8")


def parse(source: str, filename: str = "<config>") -> ast.Module:
    """The module's syntax tree; raises ``SyntaxError`` (the S001 finding) when it is no valid Python, or nests
    deeper than Python's own parser goes (100,000 unary minus, a sum of 200,000 terms: ``python`` fails on them
    too, with MemoryError or RecursionError, and so does mmengine's load)."""
    try:
        return ast.parse(source, filename=filename)
    except (MemoryError, RecursionError) as error:
        raise SyntaxError(f"nested deeper than Python's parser goes ({type(error).__name__}): Python cannot "
                          "compile it, so mmengine cannot load it") from None


def top_level_values(tree: ast.Module) -> dict[str, ast.expr]:
    """The last plain ``name = value`` at module level for each name."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
    return found


def literals(tree: ast.Module) -> dict[str, object]:
    """Top-level settings written as literals (``SYSTEM``, ``pretrained_model_name_or_path`` …)."""
    found = {}
    for name, value in top_level_values(tree).items():
        try:
            found[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return found


def children(node: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    """The named parts of a ``dict(...)`` call, a dict literal, or a list/tuple (by index)."""
    if isinstance(node, ast.Call):
        for keyword in node.keywords:
            if keyword.arg:
                yield keyword.arg, keyword.value
    elif isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                yield key.value, value
    elif isinstance(node, ast.List | ast.Tuple):
        for index, item in enumerate(node.elts):
            yield str(index), item


def flatten(tree: ast.Module) -> dict[str, tuple[object, int]]:
    """``{dotted key: (literal value, line)}`` for every literal the config sets."""
    out: dict[str, tuple[object, int]] = {}

    def literal(node):
        try:
            return True, ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return False, None

    def walk(key: str, node: ast.expr, depth: int) -> None:
        ok, value = literal(node)
        if ok:
            out[key] = (value, node.lineno)
            if not isinstance(node, ast.List | ast.Tuple | ast.Dict):
                return
        if depth < 8:
            for segment, child in children(node):
                walk(f"{key}.{segment}", child, depth + 1)

    for name, value in top_level_values(tree).items():
        walk(name, value, 0)
    return out


def template_name(tree: ast.Module) -> str | None:
    """The ``PROMPT_TEMPLATE.name`` the top-level ``prompt_template`` names."""
    value = top_level_values(tree).get("prompt_template")
    if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "PROMPT_TEMPLATE":
        return value.attr
    return None


def line_of(flat: dict, tree: ast.Module, key: str) -> int | None:
    """The line where ``key`` is set, following variables: ``train_dataloader.dataset.datasets.0.dataset.path``
    in an alpaca config is the line of ``alpaca_en_path = ...``."""
    if key in flat:
        return flat[key][1]
    values = top_level_values(tree)
    parts = key.split(".")
    node = values.get(parts[0])
    for part in parts[1:]:
        node = _through_names(node, values)
        node = dict(children(node)).get(part) if node is not None else None
        if node is None:
            return getattr(values.get(parts[0]), "lineno", None) if len(parts) == 1 else None
    final = _through_names(node, values)
    return getattr(final if final is not None else node, "lineno", None)


def feeding_variable(tree: ast.Module, key: str, text: str) -> tuple[str, int] | None:
    """The top-level variable that holds the string ``text`` and that the setting at ``key`` reads (directly, or
    through other variables): ``data_path`` at line 37 for ``train_dataloader.dataset.dataset``, whose
    ``data_files=dict(train=data_path)`` reads it. None when no variable holds it (an inline literal).

        >>> tree = ast.parse("p = 'a.json'\\nd = dict(ds=dict(files=dict(train=p)))\\n")
        >>> feeding_variable(tree, "d.ds", "a.json")
        ('p', 1)
    """
    values = top_level_values(tree)
    node = values.get(key.split(".")[0])
    for part in key.split(".")[1:]:
        node = dict(children(_through_names(node, values))).get(part) if node is not None else None
    seen, todo = set(), [node] if node is not None else []
    while todo:
        for inner in ast.walk(todo.pop()):
            if not isinstance(inner, ast.Name) or inner.id not in values or inner.id in seen:
                continue
            seen.add(inner.id)
            held = values[inner.id]
            if isinstance(held, ast.Constant) and held.value == text:
                return inner.id, held.lineno
            todo.append(held)
    return None


def _through_names(node, values: dict, hops: int = 20):
    """A top-level variable's value in place of its name (a few hops, never a loop)."""
    while isinstance(node, ast.Name) and node.id in values and hops:
        node, hops = values[node.id], hops - 1
    return node


def imported_names(tree: ast.Module) -> set[str]:
    """Every name a ``from x import a as b`` names: ``a`` and ``b``."""
    aliases = [alias for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names]
    return {alias.name for alias in aliases} | {alias.asname for alias in aliases if alias.asname}


def uses_msagent_mapper(tree: ast.Module) -> bool:
    """The config maps MS-Agent data (ours or xtuner's mapper): it trains the ReAct tool loop."""
    return bool(imported_names(tree) & {"msagent_map_fn", "msagent_react_map_fn"})
