"""Checks that read the config's source only: no import of torch, mmengine or xtuner.

The config is parsed with ``ast``, never run. ``flatten`` gives the literal value
and line of every setting it can see, keyed by dotted path, for the schema check.
"""

import ast
import builtins
from collections.abc import Iterator

from xtuner_recipes import settings, xtuner_info
from xtuner_recipes.validate.findings import Finding

_BUILTINS = set(dir(builtins)) | {"__file__", "__name__"}


def parse(source: str, filename: str) -> tuple[ast.Module | None, list[Finding]]:
    try:
        return ast.parse(source, filename=filename), []
    except SyntaxError as error:
        return None, [Finding("S001", "error", f"invalid Python: {error.msg}", line=error.lineno,
                              hint=(error.text or "").strip() or None)]


def top_level_values(tree: ast.Module) -> dict[str, ast.expr]:
    """The last plain ``name = value`` at module level for each name."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
    return found


def _bound(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def undefined_names(tree: ast.Module) -> Iterator[Finding]:
    """Names read but bound nowhere in the file (and not builtins)."""
    bound = _bound(tree) | _BUILTINS
    reported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound:
            if node.id not in reported:
                reported.add(node.id)
                yield Finding("S002", "error", f"name {node.id!r} is used but never defined or imported",
                              key=node.id, line=node.lineno)


def _children(node: ast.expr) -> Iterator[tuple[str, ast.expr]]:
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
            for segment, child in _children(node):
                walk(f"{key}.{segment}", child, depth + 1)

    for name, value in top_level_values(tree).items():
        walk(name, value, 0)
    return out


def setting_findings(flat: dict[str, tuple[object, int]]) -> Iterator[Finding]:
    """Each literal setting against ``schemas/settings.schema.json``."""
    for key, (value, line) in flat.items():
        if not settings.is_known(key):
            continue
        for message in settings.setting_errors(key, value):
            yield Finding("S003", "error", message, key=key, line=line,
                          hint="training would reject this value; see schemas/settings.schema.json")


def template_findings(tree: ast.Module) -> Iterator[Finding]:
    """``PROMPT_TEMPLATE.name`` where xtuner has no such template."""
    known = xtuner_info.prompt_template_names()
    if not known:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "PROMPT_TEMPLATE":
            if node.attr not in known:
                yield Finding("S004", "error", f"PROMPT_TEMPLATE has no {node.attr!r}", key="prompt_template",
                              line=node.lineno, hint=f"known: {', '.join(sorted(known))}")


def template_name(tree: ast.Module) -> str | None:
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
        node = dict(_children(node)).get(part) if node is not None else None
        if node is None:
            return getattr(values.get(parts[0]), "lineno", None) if len(parts) == 1 else None
    final = _through_names(node, values)
    return getattr(final if final is not None else node, "lineno", None)


def _through_names(node, values: dict, hops: int = 20):
    """A top-level variable's value in place of its name (a few hops, never a loop)."""
    while isinstance(node, ast.Name) and node.id in values and hops:
        node, hops = values[node.id], hops - 1
    return node


def check(source: str, filename: str) -> tuple[ast.Module | None, dict, list[Finding]]:
    tree, findings = parse(source, filename)
    if tree is None:
        return None, {}, findings
    flat = flatten(tree)
    findings += list(undefined_names(tree)) + list(setting_findings(flat)) + list(template_findings(tree))
    return tree, flat, findings


