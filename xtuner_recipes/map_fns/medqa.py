"""MedQA (Jin et al. 2020) multiple-choice records → one-turn conversations.

Covers the US (English, 4 or 5 options), Mainland (simplified Chinese) and Taiwan
(traditional Chinese) files; records already in conversation form pass through.

    >>> medqa_map_fn({"question": "Q?", "options": {"A": "x", "B": "y"}, "answer": "y", "answer_idx": "B"})["conversation"][0]["output"]
    'B. y'
"""

from collections.abc import Mapping

from xtuner_recipes.map_fns.conversation import passed_through
from xtuner_recipes.map_fns.errors import MedQAFormatError

# The system prompt of the tutorial's Medication QA (MedQA2019, MedInfo 2019: consumers' questions about drugs),
# the rows `prepare medqa` makes of its xlsx.
DRUGQA_SYSTEM = ("You are an experienced physician and pharmacist. Answer the question about the "
                 "medication accurately and clearly.")

SYSTEM_PROMPTS = {
    "en": (
        "You are a medical expert. Answer the multiple-choice question with the letter "
        "and the text of the correct option."
    ),
    "zh-hans": "你是一名医学专家。请回答下面的单项选择题，给出正确选项的字母和内容。",
    "zh-hant": "你是一名醫學專家。請回答下面的單項選擇題，給出正確選項的字母和內容。",
}

# Characters common in medical text that differ between traditional and
# simplified Chinese; enough to tell the Taiwan file from the Mainland one.
_TRADITIONAL = set("醫學診斷療藥體與應為於這個發對無經時後會說過當從還種現問題選項來處張變歲狀況嚴並")
_SIMPLIFIED = set("医学诊断疗药体与应为于这个发对无经时后会说过当从还种现问题选项来处张变岁状况严并")


def language(text: str) -> str:
    """``en``, ``zh-hans`` or ``zh-hant`` for a question's text."""
    if not any("\u4e00" <= char <= "\u9fff" for char in text):
        return "en"
    traditional = sum(char in _TRADITIONAL for char in text)
    simplified = sum(char in _SIMPLIFIED for char in text)
    return "zh-hant" if traditional > simplified else "zh-hans"


def _options(record: dict) -> dict[str, str]:
    options = record.get("options")
    if isinstance(options, Mapping):
        # xtuner reads the file with the datasets library, which gives every row the options any row
        # has: a 4-option question next to 5-option ones arrives with "E": None. None is no option.
        options = {letter: text for letter, text in options.items() if text is not None}
    if not isinstance(options, Mapping) or len(options) < 2:
        raise MedQAFormatError("'options' must be an object of at least two lettered options")
    for letter, text in options.items():
        if not (isinstance(letter, str) and len(letter) == 1 and letter.isalpha()):
            raise MedQAFormatError(f"option keys must be single letters, got {letter!r}")
        if not isinstance(text, str) or not text.strip():
            raise MedQAFormatError(f"option {letter} must be non-empty text")
    return dict(sorted(options.items()))


def medqa_map_fn(record: dict) -> dict:
    """Map one MedQA record to ``{"conversation": [{"system", "input", "output"}]}``.

    The input is the question followed by one ``X. text`` line per option; the
    output is ``answer_idx. answer``. Raises ``MedQAFormatError`` for a record
    that is neither MedQA nor a valid conversation.
    """
    passed = passed_through(record, MedQAFormatError)
    if passed is not None:
        return passed
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise MedQAFormatError("missing 'question' text (and no 'conversation' either)")
    options = _options(record)
    letter = record.get("answer_idx")
    if not isinstance(letter, str) or letter not in options:
        raise MedQAFormatError(f"'answer_idx' must be one of {', '.join(options)}, got {letter!r}")
    answer = record.get("answer")
    if answer is None:  # absent, or filled in with None by the datasets library: the option's text is the answer
        answer = options[letter]
    if not isinstance(answer, str) or answer.strip() != options[letter].strip():
        raise MedQAFormatError(f"'answer' {answer!r} is not the text of option {letter} ({options[letter]!r})")
    lines = [question.strip(), ""] + [f"{key}. {text.strip()}" for key, text in options.items()]
    turn = {
        "system": SYSTEM_PROMPTS[language(question + "".join(options.values()))],
        "input": "\n".join(lines),
        "output": f"{letter}. {options[letter].strip()}",
    }
    return {"conversation": [turn]}
