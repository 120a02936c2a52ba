"""``set --model PATH``: edit every place the config hands the model's path to a consumer — the LLM,
its tokenizer, an image processor loaded from the same folder — inline or through a variable.

A consumer is a ``pretrained_model_name_or_path=`` argument anywhere in the config. The model's path
is what ``model.llm`` (or ``model``) gets; every consumer given that same path is the same model and
is edited (its literal, or the top-level variable it names); consumers of other paths (a LLaVA
config's visual encoder) are left alone and listed.

    >>> code, edited, _ = set_model_path("llm = 'a'\\nmodel = dict(llm=dict(pretrained_model_name_or_path=llm))\\n"
    ...                                  "tokenizer = dict(pretrained_model_name_or_path='a')\\n", "./m")
    >>> edited
    ['llm', 'tokenizer.pretrained_model_name_or_path']
"""

import libcst as cst

from xtuner_recipes.errors import OverrideError
from xtuner_recipes.rewrite import locate
from xtuner_recipes.rewrite.transformers import ReplaceValue

KEYWORD = "pretrained_model_name_or_path"


class _Consumers(cst.CSTVisitor):
    """Every ``pretrained_model_name_or_path=`` argument, with the dotted place it sits at."""

    def __init__(self) -> None:
        self.found: list[tuple[str, cst.Arg]] = []
        self._place: list[str] = []

    def visit_SimpleStatementLine(self, node) -> None:
        for small in node.body:
            if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
                self._place = [small.targets[0].target.value]

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._place.append(node.keyword.value)
            if node.keyword.value == KEYWORD:
                self.found.append((".".join(self._place), node))

    def leave_Arg(self, original_node: cst.Arg) -> None:
        if original_node.keyword is not None:
            self._place.pop()


def _literal(node, binds) -> tuple[str | None, cst.CSTNode | None]:
    """The string a consumer gets, and the node to edit (its literal, or the variable's assignment)."""
    if isinstance(node, cst.SimpleString):
        return node.evaluated_value, None
    if isinstance(node, cst.Name) and node.value in binds and isinstance(binds[node.value].value, cst.SimpleString):
        return binds[node.value].value.evaluated_value, binds[node.value].node
    return None, None


def set_model_path(source: str, path: str, filename: str = "<config>") -> tuple[str, list[str], list[str]]:
    """The new source, the places edited, and notes (consumers left alone, and why)."""
    from xtuner_recipes.rewrite.api import _quoted, parse_config

    tree = parse_config(source, filename)
    binds = locate.bindings(tree)
    visitor = _Consumers()
    tree.visit(visitor)
    if not visitor.found:
        raise OverrideError(f"{filename}: no pretrained_model_name_or_path= in the config: nothing loads a model "
                            "from a path here", hint="set the model's setting by its dotted key instead")
    consumers = [(place, arg, *_literal(arg.value, binds)) for place, arg in visitor.found]
    llm = next((c for c in consumers if c[0].startswith(("model.llm.", "model.pretrained"))), consumers[0])
    if llm[2] is None:
        raise OverrideError(f"{filename}: {llm[0]} is {locate.code_of(llm[1].value)!r}, not a path this tool can "
                            "follow to a literal", hint=f"set {llm[0]}=... by its key instead")
    edits, edited, notes = {}, [], []
    for place, arg, value, binding in consumers:
        if value != llm[2]:
            what = f"loads {value!r}" if value is not None else f"is {locate.code_of(arg.value)!r}"
            notes.append(f"{place} {what}: another model, left as it is")
            continue
        target = binding if binding is not None else arg
        if id(target) in edits:
            continue
        original = binding.value if binding is not None else arg.value
        edits[id(target)] = cst.SimpleString(_quoted(path, original.quote))
        edited.append(arg.value.value if binding is not None else place)
    return tree.visit(ReplaceValue(edits)).code, edited, notes
