"""What an override's value may be: a Python literal, or a dotted name bound in the config.

Values are parsed, never evaluated: ``ast.literal_eval`` accepts literals only.

    >>> literal("(0.9, 0.999)")
    (True, (0.9, 0.999))
    >>> literal("__import__('os')")
    (False, None)
"""

import ast

import libcst as cst

from xtuner_recipes.errors import OverrideError

NOT_A_LITERAL = object()


def literal(text: str) -> tuple[bool, object]:
    """``(True, value)`` when ``text`` is a Python literal, else ``(False, None)``."""
    try:
        return True, ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def dotted_root(text: str) -> str | None:
    """The first name of ``a.b.c``, or None when ``text`` is not a dotted name."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def value_expression(key: str, text: str, bound: set[str], *, string_ok: bool) -> tuple[cst.BaseExpression, object]:
    """The libcst expression for ``text`` and its Python value (``NOT_A_LITERAL`` for names).

    ``string_ok``: the setting takes a string, so text that is neither a literal nor
    a bound name is taken as the string itself (``data_path=./train.jsonl``).
    """
    is_literal, value = literal(text)
    if is_literal:
        return cst.parse_expression(text.strip()), value
    root = dotted_root(text)
    if root is not None and root in bound:
        return cst.parse_expression(text.strip()), NOT_A_LITERAL
    if string_ok:
        return cst.SimpleString(repr(text)), text
    if root is not None:
        raise OverrideError(
            f"{key}: expected a Python literal or a dotted name whose first part the config defines, got {shown(text)}",
            hint=f"{root!r} is not defined in the config; quote the value if it is a string",
        )
    raise OverrideError(f"{key}: expected a Python literal or a dotted name, got {shown(text)}")


def shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for an error message, cut to ``limit`` characters (a 5,000-digit value is not echoed whole).

        >>> shown("9" * 100, limit=10)
        "'9999999999…' (100 characters)"
    """
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}"[:-1] + f"…' ({len(text)} characters)"
