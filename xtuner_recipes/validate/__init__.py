"""Check an xtuner config before any model loads: ``validate_config(path, level="full")``.

    >>> report = validate_config("my_config.py", level="static")  # doctest: +SKIP
    >>> report.ok, [f.code for f in report.findings]  # doctest: +SKIP
    (False, ['S003'])
"""

from xtuner_recipes.validate.findings import CODES, ConfigReport, Finding
from xtuner_recipes.validate.runner import LEVELS, validate_config

__all__ = ["CODES", "LEVELS", "ConfigReport", "Finding", "validate_config"]
