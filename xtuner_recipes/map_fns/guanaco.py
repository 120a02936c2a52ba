"""openassistant-guanaco (OASST1's best replies) ``text`` → conversation turns.

xtuner's ``oasst1_map_fn`` splits on every ``###``, so a reply holding a Markdown heading
loses text; this one splits only on the speaker markers. Records already in
conversation form (``xtuner-recipes prepare oasst1``) pass through, checked.

    >>> guanaco_map_fn({"text": "### Human: hi### Assistant: hello"})
    {'conversation': [{'input': 'hi', 'output': 'hello'}]}
"""

import re
from xtuner_recipes.map_fns.conversation import passed_through
from xtuner_recipes.map_fns.errors import GuanacoFormatError

_SPEAKER = re.compile(r"###\s*(Human|Assistant):")


def guanaco_map_fn(record: dict) -> dict:
    """Pairs of (Human, Assistant) turns; a trailing question without a reply is dropped, as xtuner does."""
    passed = passed_through(record, GuanacoFormatError)
    if passed is not None:
        return passed
    text = record.get("text")
    if not isinstance(text, str):
        raise GuanacoFormatError("a guanaco record needs a string 'text'")
    parts = _SPEAKER.split(text)  # ['', 'Human', ' q', 'Assistant', ' a', ...]
    turns, question = [], None
    for speaker, said in zip(parts[1::2], parts[2::2]):
        if speaker == "Human":
            question = said.strip()
        elif question is not None:
            turns.append({"input": question, "output": said.strip()})
            question = None
    if not turns:
        raise GuanacoFormatError("'text' has no '### Human:' followed by '### Assistant:'")
    return {"conversation": turns}
