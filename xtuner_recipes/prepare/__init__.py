"""Raw MedQA, MS-Agent and OASST1 files → xtuner-ready JSONL with a seeded split and a manifest.

    >>> result = prepare("medqa", ["MedQA2019.xlsx"], "medqa", test_ratio=0.3, seed=1)  # doctest: +SKIP
    >>> result.written  # doctest: +SKIP
    {'train': 483, 'test': 207}
"""

from xtuner_recipes.prepare.runner import PrepareResult, prepare

__all__ = ["PrepareResult", "prepare"]
