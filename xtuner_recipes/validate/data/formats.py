"""Say what a data row is: the common fine-tuning formats, and the map function that reads each.

    >>> suggest({"messages": [{"role": "user", "content": "hi"}]})
    'the row is OpenAI chat messages: set dataset_map_fn=openai_map_fn (from xtuner.dataset.map_fns import openai_map_fn)'
"""

XTUNER = "xtuner.dataset.map_fns"
OURS = "xtuner_recipes.map_fns"

# (what the row is, test on its keys, map function, module); the first that fits wins.
FORMATS = (
    ("xtuner's conversation form", lambda r: isinstance(r.get("conversation"), list), None, None),
    ("OpenAI chat messages", lambda r: isinstance(r.get("messages"), list), "openai_map_fn", XTUNER),
    ("an MSAgent-Bench dialogue", lambda r: "conversations" in r, "msagent_map_fn", OURS),
    ("an original MedQA question", lambda r: {"question", "options", "answer"} <= r.keys(), "medqa_map_fn", OURS),
    ("a Chinese Alpaca record", lambda r: "instruction_zh" in r and "output_zh" in r, "alpaca_zh_map_fn", XTUNER),
    ("an Alpaca record", lambda r: "instruction" in r and "output" in r, "alpaca_map_fn", XTUNER),
    ("an openassistant-guanaco text", lambda r: isinstance(r.get("text"), str) and "### Human:" in r["text"],
     "oasst1_map_fn", XTUNER),
    ("plain text (pretraining)", lambda r: isinstance(r.get("text"), str), "pretrain_map_fn", XTUNER),
)


def suggest(record: dict) -> str | None:
    """What ``record`` is and how to read it, or None when it is none of the common formats."""
    if {"Question", "Answer"} <= record.keys():
        return ("the row is a raw Medication QA (MedQA2019) record: convert the file first with "
                "`xtuner-recipes prepare medqa FILE -o OUTDIR`")
    for label, fits, name, module in FORMATS:
        if fits(record):
            if name is None:
                return f"the row is {label}: set dataset_map_fn=None, or a map function that passes it through"
            return f"the row is {label}: set dataset_map_fn={name} (from {module} import {name})"
    keys = ", ".join(sorted(map(str, record))[:8])
    return f"the row's fields are {keys}: none of the formats this tool knows; check the map function's field names"
