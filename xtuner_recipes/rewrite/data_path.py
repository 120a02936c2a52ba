"""``set --data PATH`` on a config that keeps its data somewhere other than ``data_path``: find the
dataset loaders (``dict(type=load_dataset, …)``, ``MsDataset.load``) and the top-level variable each
reads, so ``--data`` edits that one — or, with several, asks which (``--data NAME=PATH``).

    >>> loader_variables("p = 'x'\\nd = dict(type=load_dataset, path='json', data_files=dict(train=p))\\n")
    (['p'], 0)
"""

import libcst as cst

from xtuner_recipes.rewrite.locate import bindings, dotted_name, nodes

LOADERS = {"load_dataset", "MsDataset.load"}
SOURCES = ("data_files", "path", "data_dir", "dataset_name")


def is_loader(call: cst.Call) -> bool:
    """``dict(type=load_dataset, ...)``, or as mmengine dumps it, ``dict(type='datasets.load_dataset', ...)``."""
    kind = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "type"), None)
    name = kind.evaluated_value if isinstance(kind, cst.SimpleString) else dotted_name(kind) if kind else ""
    return isinstance(name, str) and (name in LOADERS or name.endswith(tuple(f".{loader}" for loader in LOADERS)))


def holds_loader(statement: cst.CSTNode) -> bool:
    """Whether a top-level statement holds a dataset loader: the only statements this module's transformers change."""
    return any(isinstance(node, cst.Call) and is_loader(node) for node in nodes(statement))


def _names(node) -> list[str]:
    """Top-level-looking names a loader argument reads: ``p``, ``dict(train=p)``, ``[p, q]``."""
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, cst.Call):
        return [name for arg in node.args for name in _names(arg.value)]
    if isinstance(node, cst.List | cst.Tuple):
        return [name for element in node.elements for name in _names(element.value)]
    if isinstance(node, cst.Dict):
        return [name for element in node.elements if isinstance(element, cst.DictElement)
                for name in _names(element.value)]
    return []


class _Loaders(cst.CSTVisitor):
    def __init__(self) -> None:
        self.variables: list[str] = []
        self.inline = 0  # loaders whose source is written in place, not through a variable

    def visit_Call(self, node: cst.Call) -> None:
        if not is_loader(node):
            return
        found = [name for a in node.args if a.keyword is not None and a.keyword.value in SOURCES
                 for name in _names(a.value)]
        if found:
            self.variables += [name for name in found if name not in self.variables]
        else:
            self.inline += 1


def loader_variables(source: str) -> tuple[list[str], int]:
    """The top-level variables the config's loaders read, in order, and how many loaders read none."""
    tree = cst.parse_module(source)
    visitor = _Loaders()
    tree.visit(visitor)
    bound = bindings(tree)
    return [name for name in visitor.variables if name in bound], visitor.inline


class ReadVariable(cst.CSTTransformer):
    """In every dataset loader, a string literal equal to ``old`` among its sources (``data_files``, ``data_dir``,
    ``path``) becomes ``replacement``: a config dumped by mmengine writes the path as its own literal in each loader,
    beside a ``data_path`` that nothing reads any more."""

    def __init__(self, old: str, replacement: cst.BaseExpression) -> None:
        super().__init__()
        self.old, self.replacement, self.replaced = old, replacement, 0
        self._depth = 0  # inside a loader's source argument
        self._calls: list[bool] = []  # whether each call we are in is a loader

    def _source_arg(self, node: cst.Arg) -> bool:
        return node.keyword is not None and node.keyword.value in SOURCES[:3]

    def visit_Call(self, node: cst.Call) -> None:
        self._calls.append(is_loader(node))

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        self._calls.pop()
        return updated_node

    def visit_Arg(self, node: cst.Arg) -> None:
        if self._calls and self._calls[-1] and self._source_arg(node):
            self._depth += 1

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        if self._depth and self._source_arg(original_node):
            self._depth -= 1
        return updated_node

    def leave_SimpleString(self, original_node: cst.SimpleString, updated_node: cst.SimpleString):
        if self._depth and original_node.evaluated_value == self.old:
            self.replaced += 1
            return self.replacement
        return updated_node


class _Literals(cst.CSTVisitor):
    """The string literals in loaders' ``data_files`` and ``data_dir`` (where a dataset's own path is written)."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self._calls: list[bool] = []
        self._depth = 0

    def visit_Call(self, node: cst.Call) -> None:
        self._calls.append(is_loader(node))

    def leave_Call(self, original_node: cst.Call) -> None:
        self._calls.pop()

    def visit_Arg(self, node: cst.Arg) -> None:
        if self._calls and self._calls[-1] and node.keyword is not None and node.keyword.value in SOURCES[:3:2]:
            self._depth += 1

    def leave_Arg(self, original_node: cst.Arg) -> None:
        if self._depth and original_node.keyword is not None and original_node.keyword.value in SOURCES[:3:2]:
            self._depth -= 1

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if self._depth and node.evaluated_value not in self.found:
            self.found.append(node.evaluated_value)


def loader_literals(source: str) -> list[str]:
    """The distinct paths the config's loaders write in place (``data_files=dict(train='./x.json')``), in order.

        >>> loader_literals("d = dict(type=load_dataset, path='json', data_files=dict(train='a.json'))\\n")
        ['a.json']
    """
    visitor = _Literals()
    cst.parse_module(source).visit(visitor)
    return visitor.found


def loader_paths(source: str) -> list[str]:
    """The ``path=`` literals of loaders that name no ``data_files`` or ``data_dir``: a placeholder such as POLAR's
    ``path="/your/custom/path/here"`` or a GUI's ``path=''``.

        >>> loader_paths("d = dict(type=load_dataset, path='/your/path')\\n")
        ['/your/path']
    """
    found: list[str] = []

    class _Paths(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
            path = keywords.get("path")
            if is_loader(node) and isinstance(path, cst.SimpleString) and not {"data_files", "data_dir"} & set(keywords):
                found.append(path.evaluated_value)

    cst.parse_module(source).visit(_Paths())
    return found


class PathToJson(cst.CSTTransformer):
    """The loader whose ``path=`` is ``old`` reads ``new`` with the JSON loader: ``path='json'`` and
    ``data_files=dict(train=new)`` (a folder: ``data_dir=new``), as `set --data` writes for a variable."""

    def __init__(self, old: str, new: str, folder: bool) -> None:
        super().__init__()
        self.old, self.new, self.folder, self.changed = old, new, folder, 0

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        keywords = {a.keyword.value: a.value for a in updated_node.args if a.keyword is not None}
        path = keywords.get("path")
        if not (is_loader(updated_node) and isinstance(path, cst.SimpleString) and path.evaluated_value == self.old):
            return updated_node
        from xtuner_recipes.rewrite.new_keyword import with_keyword

        self.changed += 1
        args = [a.with_changes(value=cst.SimpleString("'json'")) if a.keyword is not None and a.keyword.value == "path"
                else a for a in updated_node.args]
        source = cst.SimpleString(repr(self.new))
        value = source if self.folder else cst.parse_expression(f"dict(train={repr(self.new)})")
        return with_keyword(updated_node.with_changes(args=args), "data_dir" if self.folder else "data_files", value)
