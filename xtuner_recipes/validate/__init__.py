"""Check an xtuner config before any model loads: ``validate_config(path, level="full")``.

``validate_config("my_config.py", level="static")`` returns a ``ConfigReport``: ``report.ok`` is False when a
finding is an error, and ``[f.code for f in report.findings]`` lists them (``['S003']``).
"""

from xtuner_recipes.findings import CODES, ConfigReport, Finding
from xtuner_recipes.validate.runner import LEVELS, validate_config

__all__ = ["CODES", "LEVELS", "ConfigReport", "Finding", "validate_config"]
