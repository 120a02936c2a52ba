"""Raw MedQA, MS-Agent and OASST1 files → xtuner-ready JSONL with a seeded split and a manifest.

``prepare("medqa", ["MedQA2019.xlsx"], "medqa", test_ratio=0.3, seed=1).written`` is
``{'train': 483, 'test': 207}`` for the tutorial's 690-row sheet.
"""

from xtuner_recipes.prepare.runner import PrepareResult, prepare

__all__ = ["PrepareResult", "prepare"]
