"""One raw record → one xtuner conversation, per task; a bad record raises ``MapFnError``.

    >>> CONVERTERS["oasst1"]({"text": "### Human: hi### Assistant: hello"})
    [{'input': 'hi', 'output': 'hello'}]
"""

from collections.abc import Callable, Mapping

from xtuner_recipes.map_fns import guanaco_map_fn, medqa_map_fn, msagent_map_fn
from xtuner_recipes.map_fns.medqa import DRUGQA_SYSTEM
from xtuner_recipes.map_fns.errors import MapFnError, MedQAFormatError


def medqa_conversation(record: Mapping) -> list[dict]:
    """Original MedQA (question, options, answer_idx), a DrugQA sheet row, or a conversation
    (every mapper passes conversation-form records through, checked)."""
    if "Question" in record or "Answer" in record:
        question, answer = record.get("Question"), record.get("Answer")
        for name, value in (("Question", question), ("Answer", answer)):
            if not isinstance(value, str) or not value.strip():
                raise MedQAFormatError(f"the {name} cell is empty")
        return [{"system": DRUGQA_SYSTEM, "input": question.strip(), "output": answer.strip()}]
    return mapped(medqa_map_fn)(record)


def mapped(map_fn: Callable[[Mapping], dict]) -> Callable[[Mapping], list[dict]]:
    """A recipe's mapper as a converter: its turns, or ``MapFnError`` when there are none."""

    def convert(record: Mapping) -> list[dict]:
        turns = map_fn(record)["conversation"]
        if not turns:
            raise MapFnError("the record has no reply to learn from")
        return turns

    return convert


CONVERTERS: dict[str, Callable[[Mapping], list[dict]]] = {
    "medqa": medqa_conversation,
    "msagent": mapped(msagent_map_fn),  # MSAgent-Bench, `conversations` a JSON string or a list
    "oasst1": mapped(guanaco_map_fn),  # openassistant-guanaco "### Human: …### Assistant: …"
}
