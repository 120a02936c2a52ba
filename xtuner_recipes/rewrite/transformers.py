"""One libcst transformer per kind of edit. Each leaves nodes it wasn't asked to touch as they are.

Targets are matched by identity of the original node, so an edit lands exactly
where ``locate.resolve`` found it and nowhere else.
"""

import ast
from collections.abc import Sequence

import libcst as cst

from xtuner_recipes.rewrite.locate import code_of, dotted_name, nodes


class ReplaceValue(cst.CSTTransformer):
    """Give each entry (Assign, AnnAssign, Arg, DictElement, Element) a new value expression."""

    def __init__(self, new_values: dict[int, cst.BaseExpression]):
        super().__init__()
        self._new = new_values

    def _swap(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
        new = self._new.get(id(original))
        return updated if new is None else updated.with_changes(value=new)

    def leave_Assign(self, original_node, updated_node):
        return self._swap(original_node, updated_node)

    def leave_AnnAssign(self, original_node, updated_node):
        return self._swap(original_node, updated_node)

    def leave_Arg(self, original_node, updated_node):
        return self._swap(original_node, updated_node)

    def leave_DictElement(self, original_node, updated_node):
        return self._swap(original_node, updated_node)

    def leave_Element(self, original_node, updated_node):
        return self._swap(original_node, updated_node)


def _drop(original: Sequence[cst.CSTNode], updated: Sequence[cst.CSTNode], doomed: set[int]) -> list[cst.CSTNode]:
    """``updated`` without the items whose originals are ``doomed``.

    When the last item goes, the new last item takes its comma, so the closing
    bracket keeps its line and indentation (``dict(a=1, b=2)`` → ``dict(a=1)``).
    """
    kept = [new for old, new in zip(original, updated) if id(old) not in doomed]
    if kept and id(original[-1]) in doomed and hasattr(kept[-1], "comma"):
        kept[-1] = kept[-1].with_changes(comma=updated[-1].comma)
    return kept


class RemoveEntry(cst.CSTTransformer):
    """Remove keyword arguments, dict items, list items or top-level statements."""

    def __init__(self, doomed: set[int]):
        super().__init__()
        self._doomed = doomed

    def leave_Call(self, original_node, updated_node):
        if not any(id(arg) in self._doomed for arg in original_node.args):
            return updated_node
        return updated_node.with_changes(args=_drop(original_node.args, updated_node.args, self._doomed))

    def _elements(self, original_node, updated_node):
        if not any(id(element) in self._doomed for element in original_node.elements):
            return updated_node
        return updated_node.with_changes(
            elements=_drop(original_node.elements, updated_node.elements, self._doomed)
        )

    def leave_Dict(self, original_node, updated_node):
        return self._elements(original_node, updated_node)

    def leave_List(self, original_node, updated_node):
        return self._elements(original_node, updated_node)

    def leave_Tuple(self, original_node, updated_node):
        return self._elements(original_node, updated_node)

    def leave_SimpleStatementLine(self, original_node, updated_node):
        kept = [new for old, new in zip(original_node.body, updated_node.body) if id(old) not in self._doomed]
        if len(kept) == len(original_node.body):
            return updated_node
        if not kept:
            return cst.RemoveFromParent()
        # `a = 1; b = 2` without `a`: the other statements stay, the last without its `;`.
        return updated_node.with_changes(body=[*kept[:-1], kept[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)])


class SwitchLoader(cst.CSTTransformer):
    """Point a dataset loader that reads ``data_path`` at local JSON files.

    ``dict(type=load_dataset, path=data_path)`` (a hub id) and
    ``dict(type=MsDataset.load, dataset_name=data_path)`` (ModelScope) become
    ``dict(type=load_dataset, path='json', data_files=dict(train=data_path))``,
    or ``data_dir=data_path`` for a folder; ``process_ms_dataset`` becomes
    ``process_hf_dataset``.
    """

    TYPES = frozenset({"load_dataset", "MsDataset.load", "process_ms_dataset"})  # the calls it changes

    @classmethod
    def touches(cls, statement: cst.CSTNode) -> bool:
        """Whether a top-level statement holds a ``dict(type=...)`` of a call this transformer rewrites or renames:
        the only statements it can change."""
        return any(isinstance(node, cst.Arg) and node.keyword is not None and node.keyword.value == "type"
                   and dotted_name(node.value) in cls.TYPES for node in nodes(statement))

    def __init__(self, variable: str, folder: bool):
        super().__init__()
        self.variable = variable
        self.folder = folder
        self.switched = 0

    def _reads_variable(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Name) and node.value == self.variable

    def _source_arg(self, arg: cst.Arg) -> bool:
        if arg.keyword is None:
            return False
        if self._reads_variable(arg.value):
            return arg.keyword.value in {"path", "data_files", "data_dir", "dataset_name"}
        # data_files=dict(train=data_path) or data_files=[data_path]
        return arg.keyword.value == "data_files" and any(
            self._reads_variable(getattr(part, "value", None)) for part in _parts(arg.value)
        )

    def leave_Call(self, original_node, updated_node):
        args = list(updated_node.args)
        loader = _keyword(args, "type")
        if loader is None or not any(self._source_arg(arg) for arg in args):
            return self._rename_process(updated_node)
        if dotted_name(loader.value) not in {"load_dataset", "MsDataset.load"}:
            return updated_node
        if self._already_local_list(args):
            return updated_node  # `data_files=[data_path, "other.jsonl"]`: the variable's new value is enough
        others = [a for a in args if a.keyword is None or a.keyword.value not in _SOURCE_KEYS]
        rebuilt = self._wanted_args(args) + others
        if [_shape(a) for a in rebuilt] == [_shape(a) for a in args]:
            return updated_node  # already reads local JSON the way we would write it
        self.switched += 1
        # Reuse the original commas so a multi-line call keeps its layout.
        commas = [args[0].comma] * (len(rebuilt) - 1) + [args[-1].comma]
        return updated_node.with_changes(args=[a.with_changes(comma=c) for a, c in zip(rebuilt, commas)])

    def _already_local_list(self, args: list[cst.Arg]) -> bool:
        """A local JSON loader whose data_files holds the variable among other files (a list, or a dict
        of splits): rewriting it to ``dict(train=variable)`` would drop the others."""
        path, files = _keyword(args, "path"), _keyword(args, "data_files")
        if self.folder or path is None or files is None or not isinstance(path.value, cst.SimpleString):
            return False
        if path.value.evaluated_value != "json" or not isinstance(files.value, cst.List | cst.Tuple | cst.Dict | cst.Call):
            return False
        return len(_parts(files.value)) > 1

    def _wanted_args(self, args: list[cst.Arg]) -> list[cst.Arg]:
        type_arg = _keyword(args, "type").with_changes(value=cst.Name("load_dataset"))
        path_arg = cst.Arg(keyword=cst.Name("path"), value=cst.SimpleString("'json'"), equal=_EQUAL)
        if self.folder:
            source = cst.Arg(keyword=cst.Name("data_dir"), value=cst.Name(self.variable), equal=_EQUAL)
        else:
            source = cst.Arg(
                keyword=cst.Name("data_files"),
                value=cst.parse_expression(f"dict(train={self.variable})"),
                equal=_EQUAL,
            )
        return [type_arg, path_arg, source]

    def _rename_process(self, node: cst.Call) -> cst.Call:
        if not self.switched:
            return node
        type_arg = _keyword(list(node.args), "type")
        if type_arg is not None and dotted_name(type_arg.value) == "process_ms_dataset":
            return node.with_changes(
                args=[a.with_changes(value=cst.Name("process_hf_dataset")) if a is type_arg else a for a in node.args]
            )
        return node


_SOURCE_KEYS = {"type", "path", "data_files", "data_dir", "dataset_name"}
_EQUAL = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


def _shape(arg: cst.Arg) -> str:
    """An argument's meaning without its formatting: quotes and spaces don't count."""
    return ast.dump(ast.parse(f"f({code_of(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT))})", mode="eval"))


def _keyword(args: list[cst.Arg], name: str) -> cst.Arg | None:
    for arg in args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


def _parts(node: cst.BaseExpression) -> list[cst.CSTNode]:
    if isinstance(node, cst.Call):
        return list(node.args)
    if isinstance(node, cst.List | cst.Tuple | cst.Dict):
        return list(node.elements)
    return []


def add_imports(module: cst.Module, imports: list[tuple[str, str]]) -> cst.Module:
    """Add ``from MODULE import NAME`` lines after the last top-level import, once each."""
    if not imports:
        return module
    body = list(module.body)
    last = max(
        (i for i, s in enumerate(body) if isinstance(s, cst.SimpleStatementLine)
         and any(isinstance(x, cst.Import | cst.ImportFrom) for x in s.body)),
        default=-1,
    )
    new = [cst.parse_statement(f"from {module} import {name}\n") for module, name in imports]
    return module.with_changes(body=body[: last + 1] + new + body[last + 1 :])


def remove_imports(module: cst.Module, names: set[str]) -> cst.Module:
    """Drop ``from M import NAME`` for the given names. A line left with no name goes, and the
    blank lines above it move to the next line, so import groups stay apart."""
    narrow = _NarrowImports(names)
    body, carried = [], None
    for statement in module.body:
        if any(isinstance(node, cst.ImportFrom) for node in nodes(statement)):
            statement = statement.visit(narrow)
        if carried is not None and not statement.leading_lines:
            statement = statement.with_changes(leading_lines=carried)
        carried = None
        if (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
                and isinstance(statement.body[0], cst.ImportFrom) and narrow.kept(statement.body[0]) == []):
            carried = statement.leading_lines
            continue
        body.append(statement)
    return module.with_changes(body=body)


class _NarrowImports(cst.CSTTransformer):
    """``from M import a, b`` without the doomed names, where some stay (a line left with none is
    ``remove_imports``' to drop, minding its spacing)."""

    def __init__(self, names: set[str]):
        super().__init__()
        self.names = names

    def kept(self, node: cst.ImportFrom) -> list[cst.ImportAlias] | None:
        if isinstance(node.names, cst.ImportStar):
            return None
        return [alias for alias in node.names
                if (alias.asname.name.value if alias.asname else dotted_name(alias.name)) not in self.names]

    def leave_ImportFrom(self, original_node, updated_node):
        kept = self.kept(updated_node)
        if not kept or len(kept) == len(updated_node.names):
            return updated_node
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(names=kept)
