"""The library call behind ``set`` and ``gen``: overrides in, new source text out.

    >>> from xtuner_recipes.rewrite import parse_override
    >>> result = apply_overrides("lr = 2e-4\\nmax_epochs = 3\\n", [parse_override("max_epochs=1")])
    >>> result.code, result.values["max_epochs"]
    ('lr = 2e-4\\nmax_epochs = 1\\n', 1)
"""

from dataclasses import dataclass, field

import libcst as cst

from xtuner_recipes import settings
from xtuner_recipes.errors import OverrideError
from xtuner_recipes.paths import is_data_folder, is_local_data
from xtuner_recipes.rewrite import locate
from xtuner_recipes.rewrite.data_path import PathToJson, ReadVariable, holds_loader
from xtuner_recipes.rewrite.overrides import Override
from xtuner_recipes.rewrite.transformers import RemoveEntry, ReplaceValue, SwitchLoader, add_imports, remove_imports
from xtuner_recipes.rewrite.values import NOT_A_LITERAL, shown, value_expression

@dataclass(frozen=True)
class RewriteResult:
    """The new source, what changed, and what the user should be told."""

    code: str
    changed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    values: dict = field(default_factory=dict)


# The largest config the rewriter takes: libcst holds every token as objects (a 9.5 MB config took 7.6 GB);
# xtuner's configs are a few KB.
MAX_REWRITE_BYTES = 1024 ** 2


def parse_config(source: str, filename: str = "<config>") -> cst.Module:
    """Parse config source, turning a syntax error into an ``OverrideError`` that names the line. Python's own
    parser reads it first: what it cannot parse (nesting past its limits) never reaches libcst, whose native
    parser crashes on it."""
    from xtuner_recipes.config_source import parse

    if len(source.encode("utf-8", errors="replace")) > MAX_REWRITE_BYTES:
        raise OverrideError(f"{filename} is {len(source) / 1024 ** 2:.1f} MB: the rewriter takes configs up to "
                            f"{MAX_REWRITE_BYTES // 1024 ** 2} MB (xtuner's are a few KB)", hint="edit it by hand")
    try:
        parse(source, filename)
    except SyntaxError as error:
        where = f"{filename}:{error.lineno}" if error.lineno else filename
        raise OverrideError(f"{where}: the config is not valid Python: {error.msg}") from None
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise OverrideError(
            f"{filename}:{error.raw_line}:{error.raw_column}: the config is not valid Python: {error.message}"
        ) from None


def apply_overrides(
    source: str,
    overrides: list[Override],
    *,
    data_path: str | None = None,
    filename: str = "<config>",
    data_variable: str = "data_path",
    data_literal: str | None = None,
) -> RewriteResult:
    """Apply ``overrides`` (and the ``--data`` shorthand, which sets ``data_variable``) to config source.

    Every error is raised before anything is produced: unknown keys (with a
    did-you-mean), values of the wrong kind per ``schemas/settings.schema.json``,
    values that are neither literals nor names the config binds.
    """
    tree = parse_config(source, filename)
    changed: list[str] = []
    notes: list[str] = []
    values: dict[str, object] = {}
    data_before = None
    if data_path is not None and data_literal is not None and data_literal.startswith("path="):
        old = data_literal.removeprefix("path=")
        if is_local_data(data_path):
            tree = locate.within(tree, holds_loader, PathToJson(old, data_path, is_data_folder(data_path)))
            notes.append(f"the dataset loader's path={old!r} (no variable held it): it reads {data_path!r} with the "
                         "JSON loader now")
        else:  # a hub dataset: its id is the path
            tree = locate.within(tree, holds_loader, ReadVariable(old, cst.SimpleString(repr(data_path))))
            notes.append(f"the dataset loader's path={old!r} (no variable held it) is {data_path!r} now")
        changed.append("path")
        data_path = data_literal = None
    if data_path is not None and data_literal is not None:  # no variable: the loaders' own literal is the path
        if is_data_folder(data_path):
            raise OverrideError(f"{filename} writes its data file in place ({data_literal!r}); a folder is read with "
                                "data_dir=, not data_files=", hint="name the files (a glob such as 'folder/*.jsonl'), "
                                "or edit the loader by hand")
        reads = ReadVariable(data_literal, cst.SimpleString(repr(data_path)))
        tree = locate.within(tree, holds_loader, reads)
        notes.append(f"no variable holds the data's path: {reads.replaced} dataset loader argument(s) that wrote "
                     f"{data_literal!r} in place now write {data_path!r}")
        changed.append("data_files")
        data_path = None
    if data_path is not None:
        overrides = [*overrides, Override((data_variable,), repr(data_path))]
        held = locate.bindings(tree).get(data_variable)
        if held is not None and isinstance(held.value, cst.SimpleString):
            data_before = held.value.evaluated_value
    # One pass per override: each resolves against the tree the previous one left.
    for override in overrides:
        if override.remove:
            tree, key = _remove(tree, override)
        else:
            before = locate.bindings(tree).get(override.key) if len(override.path) == 1 else None
            before = locate.code_of(before.value) if before is not None else None
            tree, key, value, said = _set(tree, override)
            notes.extend(said)
            if value is not NOT_A_LITERAL:
                values[key] = value
            consumer = _unread_by(tree, override, before)
            if consumer is not None:  # a dumped config: every value literal, the variable read by nothing
                tree, also, _, _ = _set(tree, Override(tuple(consumer.split(".")), override.value))
                notes.append(f"{consumer} did not read {key} (it holds its own value, as in a config dumped by "
                             f"mmengine): set it too")
                changed.append(also)
        changed.append(key)
    if data_path is not None and isinstance(data_before, str):
        reads = ReadVariable(data_before, cst.Name(data_variable))
        tree = locate.within(tree, holds_loader, reads)
        if reads.replaced:
            notes.append(f"{reads.replaced} dataset loader argument(s) held {data_before!r} as their own literal (as in a "
                         f"config dumped by mmengine), so {data_variable} changed nothing: they read {data_variable} now")
    if data_path is not None and is_local_data(data_path):
        tree, note = _switch_loader(tree, is_data_folder(data_path), data_variable)
        notes.extend(note)
    return RewriteResult(tree.code, tuple(dict.fromkeys(changed)), tuple(notes), values)


def _set(tree: cst.Module, override: Override) -> tuple[cst.Module, str, object, list[str]]:
    try:
        target = locate.resolve(tree, override.path)
    except OverrideError:
        added = _add_keyword(tree, override)
        if added is None:
            raise
        return added
    notes = list(target.notes)
    expression, value = value_expression(
        target.key, override.value, locate.bound_names(tree), string_ok=settings.expects_string(target.key)
    )
    if value is not NOT_A_LITERAL:
        # The rule for the key as written (`model.lora.r`) holds through a variable (`lora.r`) too.
        problems = settings.setting_errors(target.key, value) or settings.setting_errors(override.key, value)
        if problems:
            raise OverrideError(f"invalid value for {override.key}: {problems[0]}, got {shown(override.value)}")
        if isinstance(value, str) and isinstance(target.value, cst.SimpleString):
            expression = cst.SimpleString(_quoted(value, target.value.quote))
    if target.binding is None and _mentions_variables(target.value, tree):
        notes.append(f"{override.key} was the expression {locate.code_of(target.value)!r}; only this argument was replaced")
    if locate.code_of(expression) == locate.code_of(target.value):
        return tree, target.key, value, notes  # already so: leave the bytes alone
    return locate.within(tree, target.statement, ReplaceValue({id(target.entry): expression})), target.key, value, notes


def _add_keyword(tree: cst.Module, override: Override):
    """``_set``'s answer when the path's last keyword is missing from a ``dict(type=Callee, ...)`` whose callee
    accepts it (``new_keyword``), else None (the unknown key stands)."""
    from xtuner_recipes.rewrite import new_keyword

    if len(override.path) < 2 or not isinstance(override.path[-1], str):
        return None
    try:
        parent = locate.resolve(tree, override.path[:-1], follow_last=False)
    except OverrideError:
        return None
    call = parent.value
    if not isinstance(call, cst.Call) or locate.dotted_name(call.func) != "dict":
        return None
    keyword = override.path[-1]
    takes, default = new_keyword.accepted(tree, call, keyword)
    if not takes:
        return None
    expression, value = value_expression(override.key, override.value, locate.bound_names(tree),
                                         string_ok=isinstance(default, str))
    if value is not NOT_A_LITERAL and not new_keyword.fits_default(value, default):
        raise OverrideError(f"invalid value for {override.key}: expected {type(default).__name__} like its default "
                            f"{default!r}, got {shown(override.value)}")
    new_call = new_keyword.with_keyword(call, keyword, expression)
    note = f"{override.key} was not in the config: added, as {locate.dotted_name(call.args[0].value) or 'its type'} takes it"
    return locate.within(tree, parent.statement, ReplaceValue({id(parent.entry): new_call})), override.key, value, [note]


# Where xtuner's configs read each top-level setting; a config dumped by mmengine writes the value
# there as a literal and keeps (or drops) the variable, which then changes nothing.
CONSUMERS = {
    "lr": "optim_wrapper.optimizer.lr", "betas": "optim_wrapper.optimizer.betas",
    "weight_decay": "optim_wrapper.optimizer.weight_decay", "max_norm": "optim_wrapper.clip_grad.max_norm",
    "accumulative_counts": "optim_wrapper.accumulative_counts", "batch_size": "train_dataloader.batch_size",
    "dataloader_num_workers": "train_dataloader.num_workers", "max_epochs": "train_cfg.max_epochs",
    "max_length": "train_dataloader.dataset.max_length",
    "pack_to_max_length": "train_dataloader.dataset.pack_to_max_length",
    "save_steps": "default_hooks.checkpoint.interval", "save_total_limit": "default_hooks.checkpoint.max_keep_ckpts",
}


def _unread_by(tree: cst.Module, override: Override, before: str | None) -> str | None:
    """The consumer of a top-level setting when it holds, as its own literal, the value the variable
    held (``before``): a dumped config. A consumer with another value (``interval=-1`` beside
    ``save_steps = 500``) was set apart on purpose and is left alone."""
    consumer = CONSUMERS.get(override.key) if len(override.path) == 1 else None
    if consumer is None:
        return None
    try:
        target = locate.resolve(tree, tuple(consumer.split(".")), follow_last=False)
    except OverrideError:
        return None  # no such consumer here: nothing to say
    reads = target.value
    while isinstance(reads, cst.Name) and reads.value != override.key and reads.value in locate.bindings(tree):
        reads = locate.bindings(tree)[reads.value].value  # through `train_dataset = dict(...)`-style variables
    if isinstance(reads, cst.Name) and reads.value == override.key:
        return None
    return consumer if before is not None and locate.code_of(reads) == before else None


def _remove(tree: cst.Module, override: Override) -> tuple[cst.Module, str]:
    target = locate.resolve(tree, override.path, follow_last=False)
    if target.binding is not None and _referenced(tree, target.binding.name):
        raise OverrideError(
            f"cannot remove {override.key!r}: other settings refer to it", hint="set it to another value instead"
        )
    return locate.within(tree, target.statement, RemoveEntry({id(target.entry)})), override.key


def _quoted(text: str, quote: str) -> str:
    """``text`` as a Python string literal using the quote style the file already used."""
    literal = repr(text)
    if quote == '"' and literal.startswith("'"):
        return '"' + literal[1:-1].replace("\\'", "'").replace('"', '\\"') + '"'
    return literal


def _switch_loader(tree: cst.Module, folder: bool, variable: str = "data_path") -> tuple[cst.Module, list[str]]:
    """Read ``variable`` as local JSON wherever a loader reads it from a hub."""
    bound = locate.bound_names(tree)
    used = _used_names(tree)
    switch = SwitchLoader(variable, folder)
    tree = locate.within(tree, SwitchLoader.touches, switch)
    if not switch.switched:
        return tree, []
    after = _used_names(tree)
    missing = [
        (module, name)
        for module, name in (("datasets", "load_dataset"), ("xtuner.dataset", "process_hf_dataset"))
        if name not in bound and name in after
    ]
    tree = add_imports(tree, missing)
    how = f"data_dir={variable}" if folder else f"data_files=dict(train={variable})"
    notes = [f"the dataset now loads local JSON: load_dataset(path='json', {how})"]
    # MsDataset, process_ms_dataset: an import only the old loader used would still have to
    # resolve (modelscope installed) for the config to load; imports unused before stay.
    dropped = used - after
    if dropped:
        tree = remove_imports(tree, dropped)
        notes.append(f"removed the imports the hub loader used: {', '.join(sorted(dropped))}")
    return tree, notes


def _used_names(module: cst.Module) -> set[str]:
    """Names the module's statements use, its import lines aside."""
    return set().union(*(
        _names_in(statement) for statement in module.body
        if not (isinstance(statement, cst.SimpleStatementLine)
                and any(isinstance(small, cst.Import | cst.ImportFrom) for small in statement.body))
    ))


def _names_in(node: cst.CSTNode) -> set[str]:
    """The names ``node`` reads: not an attribute's own name, not a keyword argument's name."""
    return {each.value for each in locate.nodes(node, _variable_parts) if isinstance(each, cst.Name)}


def _variable_parts(node: cst.CSTNode):
    return (node.value,) if isinstance(node, cst.Attribute | cst.Arg) else None


def _mentions_variables(node: cst.CSTNode, module: cst.Module) -> bool:
    return bool(_names_in(node) & set(locate.bindings(module)))


def _referenced(module: cst.Module, name: str) -> bool:
    """Whether any statement other than ``name``'s own assignment uses ``name``."""
    own = locate.bindings(module)[name].statement
    return any(statement is not own and name in _names_in(statement) for statement in module.body)
