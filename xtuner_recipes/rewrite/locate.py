"""Find what a dotted path names in a config's syntax tree, without running the config.

A path starts at a top-level assignment and follows keyword arguments of calls
(``dict(r=64)``), keys of dict literals and indices of lists and tuples. A name
that refers to another top-level variable is followed into that variable.

    >>> module = cst.parse_module("r = 8\\nmodel = dict(lora=dict(r=r))\\n")
    >>> resolve(module, ("model", "lora", "r")).key
    'r'
"""

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields

import libcst as cst

from xtuner_recipes.errors import OverrideError


@dataclass(frozen=True)
class Binding:
    """A top-level ``name = value`` statement."""

    name: str
    statement: cst.SimpleStatementLine
    node: cst.Assign | cst.AnnAssign

    @property
    def value(self) -> cst.BaseExpression:
        return self.node.value


@dataclass(frozen=True)
class Target:
    """Where a path ends: ``entry`` holds ``value`` (an Assign, Arg, DictElement or Element)."""

    key: str
    entry: cst.CSTNode
    value: cst.BaseExpression
    container: cst.CSTNode | None = None
    binding: Binding | None = None
    notes: tuple[str, ...] = field(default=())
    statement: cst.CSTNode | None = None  # the top-level statement that holds ``entry``


def bindings(module: cst.Module) -> dict[str, Binding]:
    """Top-level single-name assignments; a later one shadows an earlier one."""
    found: dict[str, Binding] = {}
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Assign) and len(small.targets) == 1:
                target = small.targets[0].target
            elif isinstance(small, cst.AnnAssign) and small.value is not None:
                target = small.target
            else:
                continue
            if isinstance(target, cst.Name):
                found[target.value] = Binding(target.value, statement, small)
    return found


def bound_names(module: cst.Module) -> set[str]:
    """Every name bound at the top level: variables, imports, functions, classes."""
    names = set(bindings(module))
    for statement in module.body:
        if isinstance(statement, cst.FunctionDef | cst.ClassDef):
            names.add(statement.name.value)
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Import | cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    if alias.asname is not None:
                        names.add(alias.asname.name.value)
                    elif isinstance(small, cst.Import):
                        names.add(dotted_name(alias.name).split(".")[0])
                    else:
                        names.add(dotted_name(alias.name))
    return names


def dotted_name(node: cst.BaseExpression) -> str:
    """``a.b.c`` for a Name or Attribute chain, else ``""``."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{dotted_name(node.value)}.{node.attr.value}"
    return ""


def code_of(node: cst.CSTNode) -> str:
    """The source text of one node."""
    return cst.Module([]).code_for_node(node)


def children(node: cst.BaseExpression) -> list[tuple[str | int, cst.CSTNode, cst.BaseExpression]]:
    """The addressable parts of ``node``: (segment, entry, value) triples."""
    if isinstance(node, cst.Call):
        return [(arg.keyword.value, arg, arg.value) for arg in node.args if arg.keyword is not None]
    if isinstance(node, cst.Dict):
        out = []
        for element in node.elements:
            if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
                out.append((element.key.evaluated_value, element, element.value))
        return out
    if isinstance(node, cst.List | cst.Tuple):
        return [(index, element, element.value) for index, element in enumerate(node.elements)]
    return []


def all_keys(module: cst.Module, depth: int = 6) -> list[str]:
    """Every dotted path the config defines, for did-you-mean suggestions."""
    keys: list[str] = []

    def walk(prefix: str, node: cst.BaseExpression, level: int) -> None:
        for segment, _entry, value in children(node):
            key = f"{prefix}.{segment}"
            keys.append(key)
            if level < depth:
                walk(key, value, level + 1)

    for name, binding in bindings(module).items():
        keys.append(name)
        walk(name, binding.value, 1)
    return keys


def unknown_key(module: cst.Module, key: str, reason: str) -> OverrideError:
    """An error for a path the config doesn't have, with the closest keys it does have."""
    close = difflib.get_close_matches(key, all_keys(module), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else None
    return OverrideError(f"unknown key {key!r}: {reason}", hint=hint)


def resolve(module: cst.Module, path: tuple[str | int, ...], *, follow_last: bool = True) -> Target:
    """The ``Target`` a path names, following references to top-level variables.

    With ``follow_last``, a path ending on a bare reference (``max_length=max_length``)
    lands on that variable's assignment, so every use of it changes together.
    """
    top = bindings(module)
    key = ".".join(str(part) for part in path)
    head = path[0]
    if head not in top:
        raise unknown_key(module, key, f"the config assigns no top-level {head!r}")
    binding = top[head]
    target = Target(head, binding.node, binding.value, binding=binding, statement=binding.statement)
    canonical = [head]
    seen = {head}
    statement = binding.statement
    for position, segment in enumerate(path[1:], start=1):
        node = target.value
        # Step through references to other top-level variables: dataset=train_dataset.
        while isinstance(node, cst.Name) and node.value in top and node.value not in seen:
            seen.add(node.value)
            canonical = [node.value]
            statement = top[node.value].statement
            node = top[node.value].value
        match = [(entry, value) for seg, entry, value in children(node) if seg == segment]
        if not match:
            where = ".".join(str(part) for part in path[:position])
            raise unknown_key(module, key, f"{where} has no {segment!r}")
        entry, value = match[-1]
        canonical.append(str(segment))
        target = Target(".".join(canonical), entry, value, container=node, statement=statement)
    value = target.value
    if follow_last and len(path) > 1 and isinstance(value, cst.Name) and value.value in top:
        referred = top[value.value]
        note = f"{key} refers to the variable {value.value!r}: set {value.value} instead"
        return Target(value.value, referred.node, referred.value, binding=referred, notes=(note,),
                      statement=referred.statement)
    return target


def within(module: cst.Module, wanted: cst.CSTNode | Callable[[cst.CSTNode], bool],
           transformer: cst.CSTTransformer) -> cst.Module:
    """``module`` with ``transformer`` applied, in order, to the top-level statements ``wanted`` (one statement, or
    a test of each) only: the others are neither visited nor rebuilt (libcst rebuilds every node it visits, which
    was most of a rewrite's time)."""
    chosen = wanted if callable(wanted) else lambda each: each is wanted
    body = []
    for each in module.body:
        if chosen(each):
            each = each.visit(transformer)
            if isinstance(each, cst.RemovalSentinel):
                continue
        body.append(each)
    return module.with_changes(body=body)


_FIELDS: dict[type, tuple[str, ...]] = {}


def nodes(node: cst.CSTNode, descend: Callable[[cst.CSTNode], Iterator[cst.CSTNode] | None] = lambda _: None):
    """Every node under ``node`` (itself included), in no particular order, read without libcst's visitors
    (which rebuild what they visit). ``descend(n)``: the only children of ``n`` to go into, or None for all."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        chosen = descend(current)
        if chosen is not None:
            stack.extend(chosen)
            continue
        names = _FIELDS.get(type(current))
        if names is None:
            names = _FIELDS[type(current)] = tuple(f.name for f in fields(current))
        for name in names:
            value = getattr(current, name)
            if isinstance(value, cst.CSTNode):
                stack.append(value)
            elif isinstance(value, list | tuple):
                stack.extend(item for item in value if isinstance(item, cst.CSTNode))
