"""Does ``module`` define ``name``? Answered from the module's source when it can be, without importing.

Importing what an xtuner config names (peft, mmengine.hooks, xtuner.model, datasets…) costs
seconds; reading their ``__init__.py`` with ``ast`` costs milliseconds. A name the source
defines (by ``def``, ``class``, assignment or import, or listed in a transformers-style
``_import_structure``) is taken as resolvable; anything else — a misspelling, a missing
package, a module the source can't answer for (star imports, ``__getattr__``) — is imported
for real, so every error message is Python's own.

    >>> defines("json", "dumps")
    True
    >>> defines("json", "dumpz")
    False
"""

import ast
import functools
import importlib.util
from pathlib import Path


def _module_file(dotted: str) -> Path | None:
    """The source file of ``dotted`` found on disk; only the top-level package's spec is looked up."""
    parts = dotted.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    path, locations = Path(spec.origin), list(spec.submodule_search_locations or [])
    for part in parts[1:]:
        for location in locations:
            package, module = Path(location) / part / "__init__.py", Path(location) / f"{part}.py"
            if package.is_file():
                path, locations = package, [str(package.parent)]
                break
            if module.is_file():
                path, locations = module, []
                break
        else:
            return None
    return path


def _top_level(body):
    """Statements at module level, looking into if/try/with blocks but not into defs."""
    for node in body:
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list) and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield from _top_level(inner)


@functools.lru_cache(maxsize=256)
def _names(path: Path) -> tuple[frozenset[str], tuple[Path, ...], bool]:
    """(names the module binds itself, the files its ``from .x import *`` read, whether its source
    can answer at all). Star imports are followed only when a name is not found otherwise:
    transformers' ``__init__`` star-imports 0.25 s worth of dummy-object modules."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return frozenset(), (), False
    names, stars, conclusive, lazy = set(), [], True, False
    for node in _top_level(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            conclusive &= node.name != "__getattr__"
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            lazy |= "_import_structure" in names
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    names.add(alias.asname or alias.name.split(".")[0])
                    continue
                # `from .dataset_map_fns import *` (xtuner's map_fns): the names that module binds
                star = _star_source(path, node)
                if star is None or star == path:
                    conclusive = False
                else:
                    stars.append(star)
    if lazy:  # transformers-style: exported names are listed as strings
        names.update(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return frozenset(names), tuple(stars), conclusive


def _binds(path: Path, name: str, seen: frozenset = frozenset()) -> bool | None:
    """Whether the module at ``path`` binds ``name`` (itself or through its star imports); None: can't tell."""
    names, stars, conclusive = _names(path)
    if name in names:
        return True
    for star in stars:
        if name.startswith("_"):  # a star import leaves private names behind
            continue
        if star in seen:
            conclusive = False
            continue
        found = _binds(star, name, seen | {path})
        if found:
            return True
        conclusive &= found is False
    return False if conclusive else None


def _star_source(path: Path, node: ast.ImportFrom) -> Path | None:
    """The file a relative ``from .x import *`` in ``path`` reads, when it is one on disk."""
    if not node.level or not node.module:
        return None
    base = path.parent
    for _ in range(node.level - 1):
        base = base.parent
    target = base.joinpath(*node.module.split("."))
    for candidate in (target / "__init__.py", target.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def defines(module: str, name: str | None) -> bool | None:
    """True when the source shows it, False when the source rules it out, None when it can't tell."""
    path = _module_file(module)
    if path is None:
        return None
    if name is None:
        return True
    found = _binds(path, name)
    if found:
        return True
    if path.name == "__init__.py" and ((path.parent / name / "__init__.py").is_file()
                                        or (path.parent / f"{name}.py").is_file()):
        return True  # a submodule
    return found
