"""The S checks: what the config's source shows, read with ``ast`` — no import of torch, mmengine or xtuner.

S001 the file parses, S002 every name is defined, S003 each literal setting has the type and range its
consumer enforces (``schemas/settings.schema.json``), S004 the prompt template exists.

    >>> tree, flat, findings = check("lr = -1\\n", "c.py")
    >>> [(f.code, f.line) for f in findings]
    [('S003', 1)]
"""

import ast
import builtins
from collections.abc import Iterator

from xtuner_recipes import settings, xtuner_info
from xtuner_recipes.config_source import flatten, parse
from xtuner_recipes.findings import Finding
from xtuner_recipes.validate.checks import Result
from xtuner_recipes.validate.checks import check as register

CODES = ("S001", "S002", "S003", "S004")
_BUILTINS = set(dir(builtins)) | {"__file__", "__name__"}


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


def check(source: str, filename: str) -> tuple[ast.Module | None, dict, list[Finding]]:
    """``(tree, flat settings, findings)``; the tree is None when the source is no valid Python (S001)."""
    try:
        tree = parse(source, filename)
    except SyntaxError as error:
        return None, {}, [Finding("S001", "error", f"invalid Python: {error.msg}", line=error.lineno,
                                  hint=(error.text or "").strip() or None)]
    flat = flatten(tree)
    findings = list(undefined_names(tree)) + list(setting_findings(flat)) + list(template_findings(tree))
    return tree, flat, findings


@register("source", level="static", codes=CODES, reads=("path", "text"), provides=("tree", "flat"))
def source_check(path: str, text: str) -> Result:
    tree, flat, findings = check(text, path)
    return Result(findings, provides={"tree": tree, "flat": flat})
