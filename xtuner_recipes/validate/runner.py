"""Run the checks of a level over one config and collect one report.

Levels: ``static`` (source only, no torch), ``load`` (+ mmengine loads it and its imports resolve), ``full``
(+ model directory, data, tokens, schedule, estimates, machine). The checks and their order come from
``checks``: each declares what it reads and provides.
"""

import dataclasses
from pathlib import Path

from xtuner_recipes import config_source
from xtuner_recipes.config_source import line_of, read
from xtuner_recipes.findings import DATA_ROW_CODES, ConfigReport, Finding
from xtuner_recipes.validate import checks
from xtuner_recipes.validate.inputs import MODEL_PATH_KEYS, Facts, Launch, Options

LEVELS = checks.LEVELS
# The runner's own facts; the rest come from checks. These may be None (no progress display, no tokenizer child).
BASE = ("path", "text", "launch", "options", "progress", "early")


def validate_config(path: str, *, level: str = "full", launch: Launch | None = None, options: Options | None = None,
                    tokenizer_process: bool = True, keep: dict | None = None) -> ConfigReport:
    """Check ``path`` at ``level`` for ``launch`` (default: the tutorial's) and return every finding (checks
    never stop at the first). ``keep``: a dict that receives the run's ``Facts`` (the HTML report draws from
    them). ``tokenizer_process``: load the model's tokenizer in a child process while torch imports.

    A check that fails unexpectedly (a bug of this tool's) sets ``report.internal_error``; the checks that
    need what it would have provided are skipped, the rest still run.
    """
    report = ConfigReport(config=str(path))
    try:
        text = read(path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        report.findings.append(Finding("L001", "error", f"cannot read the config: {error}"))
        return report
    options = options or Options()
    facts = Facts(dict(zip(BASE, (str(path), text, launch or Launch(), options, options.progress, None))))
    if keep is not None:
        keep["context"] = facts
    try:
        for check in checks.ordered(checks.up_to(level), set(facts.values)):
            _run(check, facts, report, tokenizer_process and level == "full")
    finally:
        if facts.early is not None:
            facts.early.close()
    report.machine = facts.values.get("machine")
    # Checks past the source know the setting, not the line: find it once, here.
    tree, flat = facts.values.get("tree"), facts.values.get("flat")
    report.findings = [
        dataclasses.replace(f, line=line_of(flat, tree, f.key))
        if tree is not None and f.key and f.line is None and f.code not in DATA_ROW_CODES else f
        for f in report.findings
    ]
    if tree is not None:
        report.findings = [_at_variable(f, tree, str(path)) if f.code in FILE_CODES else f for f in report.findings]
    return report


# Findings about a data file the config names: said at the variable the user edits, when one holds the path.
FILE_CODES = frozenset({"D001", "D002", "D010"})


def _at_variable(finding, tree, path: str):
    """``finding`` keyed to the top-level variable that holds the file it names (``data_path``, line 37), the
    setting that reads it kept in the message; unchanged when the path is written inline."""
    import re

    named = re.search(r"data (?:file|path) (.+?) (?:does not|is)", finding.message)
    found = config_source.feeding_variable(tree, finding.key, named.group(1)) if named and finding.key else None
    if found is None:
        return finding
    name, line = found
    hint = finding.hint or (f"xtuner-recipes set {path} --data PATH --in-place" if name == "data_path" else
                            f"xtuner-recipes set {path} {name}=\"PATH\" --in-place")
    return dataclasses.replace(finding, key=name, line=line, hint=hint,
                               message=f"{finding.message} (read by {finding.key})")


def _run(check: checks.Check, facts: Facts, report: ConfigReport, early_tokenizer: bool) -> None:
    values = facts.values
    failed = [name for name in check.reads if name not in values]
    if failed:  # a check before failed to provide it: say so
        report.skipped.append(f"{check.name}: not run, it needs {', '.join(failed)}, which a failing check did "
                              "not provide")
        return
    if any(values[name] is None for name in check.reads if name not in BASE):
        return  # nothing to build on: a finding already says why (no config.json, the config does not load)
    if check.name == "load" and early_tokenizer:
        # A second process loads the tokenizer while mmengine imports torch (see tokens.child).
        values["early"] = _early_tokenizer(values["flat"])
    try:
        result = check.run(**{name: values[name] for name in check.reads})
        undeclared = {f.code for f in result.findings} - set(check.codes)
        if undeclared or set(result.provides) != set(check.provides):
            raise RuntimeError(f"it gave codes {sorted(undeclared)} and facts {sorted(result.provides)} beyond or "
                               f"short of what it declares ({check.codes}, {check.provides})")
    except Exception as error:  # noqa: BLE001 - our bug, not the user's: say so, keep what was found
        if report.internal_error is None:
            report.internal_error = f"internal error in the {check.name} check: {type(error).__name__}: {error}"
        return
    report.findings += result.findings
    report.stats.update(result.stats)
    values.update(result.provides)


def _early_tokenizer(flat: dict):
    """Start loading the tokenizer of the model the source names, if it is a local folder,
    so that it loads on another core while mmengine imports torch (see ``tokens.child``)."""
    model_path = (flat.get(MODEL_PATH_KEYS[0]) or flat.get(MODEL_PATH_KEYS[1]) or (None,))[0]
    if not (isinstance(model_path, str) and Path(model_path).expanduser().is_dir()):
        return None
    from xtuner_recipes.validate.tokens.child import TokenizerProcess

    return TokenizerProcess(model_path)

