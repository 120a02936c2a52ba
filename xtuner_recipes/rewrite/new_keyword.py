"""Add a keyword a config's ``dict(type=Callee, ...)`` does not write yet, when ``Callee`` accepts it.

``set custom_hooks.1.max_new_tokens=16``: the hook's dict has no ``max_new_tokens``, but ``EvaluateChatHook``
takes one (its signature says so, default 600). The callee is found from the config's own import of it (the
module is imported, the config is not run), and the value must have its default's type.

    >>> import libcst as cst
    >>> module = cst.parse_module("from json import JSONEncoder\\nencoder = dict(type=JSONEncoder, indent=2)\\n")
    >>> accepted(module, module.body[1].body[0].value, "sort_keys")
    (True, False)
"""

import contextlib
import importlib
import inspect
import io
import warnings

import libcst as cst

from xtuner_recipes.rewrite import locate

NO_DEFAULT = object()


def _callee(module: cst.Module, call: cst.Call):
    """The class or function a ``dict(type=X, ...)`` names, imported from where the config imports it."""
    kind = next((arg.value for arg in call.args if arg.keyword is not None and arg.keyword.value == "type"), None)
    name = locate.dotted_name(kind) if kind is not None else ""
    if not name:
        return None
    head, _, rest = name.partition(".")
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if not isinstance(small, cst.ImportFrom) or isinstance(small.names, cst.ImportStar) or small.relative:
                continue
            for alias in small.names:
                bound = alias.asname.name.value if alias.asname else locate.dotted_name(alias.name)
                if bound != head or small.module is None:
                    continue
                try:
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                            warnings.catch_warnings():  # bitsandbytes and friends talk while they import
                        warnings.simplefilter("ignore")
                        imported = importlib.import_module(locate.dotted_name(small.module))
                    found = getattr(imported, locate.dotted_name(alias.name))
                    for part in filter(None, rest.split(".")):
                        found = getattr(found, part)
                except Exception:  # noqa: BLE001 - a callee that can't be imported here accepts nothing we know of
                    return None
                return found
    return None


def accepted(module: cst.Module, call: cst.Call, keyword: str) -> tuple[bool, object]:
    """``(whether the callee takes keyword, its default)``; False when the callee or its signature is unknown."""
    callee = _callee(module, call)
    if callee is None:
        return False, NO_DEFAULT
    try:
        parameters = inspect.signature(callee).parameters
    except (TypeError, ValueError):
        return False, NO_DEFAULT
    parameter = parameters.get(keyword)
    if parameter is None or parameter.kind in (parameter.POSITIONAL_ONLY, parameter.VAR_POSITIONAL,
                                               parameter.VAR_KEYWORD):
        return False, NO_DEFAULT
    return True, NO_DEFAULT if parameter.default is parameter.empty else parameter.default


def fits_default(value, default) -> bool:
    """Whether a literal ``value`` has the type of ``default`` (an int for a float, anything for None)."""
    if default is NO_DEFAULT or default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def with_keyword(call: cst.Call, keyword: str, expression: cst.BaseExpression) -> cst.Call:
    """``call`` with ``keyword=expression`` last, laid out as its other arguments are (one a line stays so)."""
    args = list(call.args)
    new = cst.Arg(value=expression, keyword=cst.Name(keyword),
                  equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                        whitespace_after=cst.SimpleWhitespace("")))
    if not args:
        return call.with_changes(args=[new])
    last = args[-1]
    between = args[-2].comma if len(args) > 1 and isinstance(args[-2].comma, cst.Comma) else cst.Comma(
        whitespace_after=cst.SimpleWhitespace(" "))
    return call.with_changes(args=[*args[:-1], last.with_changes(comma=between), new.with_changes(comma=last.comma)])
