"""``set --data PATH`` on a config that keeps its data somewhere other than ``data_path``: find the
dataset loaders (``dict(type=load_dataset, …)``, ``MsDataset.load``) and the top-level variable each
reads, so ``--data`` edits that one — or, with several, asks which (``--data NAME=PATH``).

    >>> loader_variables("p = 'x'\\nd = dict(type=load_dataset, path='json', data_files=dict(train=p))\\n")
    (['p'], 0)
"""

import libcst as cst

from xtuner_recipes.rewrite.locate import bindings, dotted_name

LOADERS = {"load_dataset", "MsDataset.load"}
SOURCES = ("data_files", "path", "data_dir", "dataset_name")


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
        kind = next((a.value for a in node.args if a.keyword is not None and a.keyword.value == "type"), None)
        if kind is None or dotted_name(kind) not in LOADERS:
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
