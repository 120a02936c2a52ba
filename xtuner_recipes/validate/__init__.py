"""Check an xtuner config before any model loads: ``validate_config(path, level="full", launch=Launch(...))``.

``validate_config("my_config.py", level="static")`` returns a ``ConfigReport``: ``report.ok`` is False when a
finding is an error, and ``[f.code for f in report.findings]`` lists them (``['S003']``); ``report.machine``
is this machine's verdict (``level="full"``). ``Launch.from_preset("deepspeed_zero3", gpus=8)`` is the launch
to check for, ``Options(sample=1000, gpu_mem=24)`` what to check with.
"""

from xtuner_recipes.findings import CODES, ConfigReport, Finding
from xtuner_recipes.validate.inputs import Launch, Options
from xtuner_recipes.validate.runner import LEVELS, validate_config

__all__ = ["CODES", "LEVELS", "ConfigReport", "Finding", "Launch", "Options", "validate_config"]
