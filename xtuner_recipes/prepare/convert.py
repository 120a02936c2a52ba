"""One raw record → one xtuner conversation, per task; a bad record raises ``MapFnError``.

    >>> oasst1_conversation({"text": "### Human: hi### Assistant: hello"})
    [{'input': 'hi', 'output': 'hello'}]
"""

from collections.abc import Callable, Mapping

from xtuner_recipes.map_fns import guanaco_map_fn, medqa_map_fn, msagent_map_fn
from xtuner_recipes.map_fns.conversation import conversation_or_none
from xtuner_recipes.map_fns.errors import MapFnError, MedQAFormatError

# The tutorial's Medication QA (MedInfo 2019) answers consumers' questions about drugs.
DRUGQA_SYSTEM = ("You are an experienced physician and pharmacist. Answer the question about the "
                 "medication accurately and clearly.")


def medqa_conversation(record: Mapping) -> list[dict]:
    """Original MedQA (question, options, answer_idx), a DrugQA sheet row, or a conversation."""
    if "Question" in record or "Answer" in record:
        question, answer = record.get("Question"), record.get("Answer")
        for name, value in (("Question", question), ("Answer", answer)):
            if not isinstance(value, str) or not value.strip():
                raise MedQAFormatError(f"the {name} cell is empty")
        return [{"system": DRUGQA_SYSTEM, "input": question.strip(), "output": answer.strip()}]
    return medqa_map_fn(record)["conversation"]


def msagent_conversation(record: Mapping) -> list[dict]:
    """MSAgent-Bench (``conversations`` as a JSON string or a list), or a conversation."""
    if "conversation" in record:
        return conversation_or_none(record)
    turns = msagent_map_fn(record)["conversation"]
    if not turns:
        raise MapFnError("the dialogue has no assistant turn to learn from")
    return turns


def oasst1_conversation(record: Mapping) -> list[dict]:
    """openassistant-guanaco ``{"text": "### Human: …### Assistant: …"}``, or a conversation."""
    return guanaco_map_fn(record)["conversation"]


CONVERTERS: dict[str, Callable[[Mapping], list[dict]]] = {
    "medqa": medqa_conversation,
    "msagent": msagent_conversation,
    "oasst1": oasst1_conversation,
}
