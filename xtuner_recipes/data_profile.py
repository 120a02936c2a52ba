"""What kind of data a recipe is given, so the config's system prompt and evaluation questions fit it.

The tutorial's "MedQA" is MedQA2019 — free-text questions about medications (sheet ``DrugQA``) —
while the recipe's defaults are for MedQA's multiple-choice exam questions. ``prepare`` records the
kind it wrote in ``manifest.json``; ``gen --data`` reads that, or looks at the first rows, and picks
the system prompt the rows were written with and evaluation questions from the held-out
``test.jsonl`` beside them (questions the model never trains on).

    >>> profile([[{"system": DRUGQA_SYSTEM, "input": "Can I take ibuprofen?", "output": "..."}]]).kind
    'medication-qa'
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from xtuner_recipes.map_fns.medqa import DRUGQA_SYSTEM, SYSTEM_PROMPTS, language

MEDICATION_QUESTIONS = [
    "How long does it take for amoxicillin to start working?",
    "Can I drink alcohol while taking metronidazole?",
]
SAMPLED = 200  # rows looked at when there is no manifest
EVALUATION_QUESTIONS = 3


@dataclass(frozen=True)
class Profile:
    kind: str  # medqa-exam | medication-qa | conversation
    language: str  # en | zh-hans | zh-hant
    system: str | None  # the system prompt most rows carry

    def as_dict(self) -> dict:
        return asdict(self)


def profile(conversations: Iterable[list[dict]]) -> Profile:
    """The kind, language and system prompt of conversation-form rows."""
    systems, languages = Counter(), Counter()
    for turns in conversations:
        first = turns[0] if turns and isinstance(turns[0], dict) else {}
        system = first.get("system")
        if isinstance(system, str) and (system in systems or len(systems) < 50):
            systems[system] += 1
        languages[language(str(first.get("input", "")))] += 1
    system = systems.most_common(1)[0][0] if systems else None
    if system == DRUGQA_SYSTEM:
        kind = "medication-qa"
    elif system in SYSTEM_PROMPTS.values():
        kind = "medqa-exam"
    else:
        kind = "conversation"
    return Profile(kind, languages.most_common(1)[0][0] if languages else "en", system)


def for_data(task: str, data: str) -> tuple[Profile | None, str]:
    """The profile of ``data`` for ``task``, and where it came from: the manifest ``prepare`` wrote
    beside it, or its first rows mapped the way the recipe maps them."""
    import json

    from xtuner_recipes.prepare.convert import CONVERTERS
    from xtuner_recipes.rows import read_rows

    path, folder = _located(data)
    manifest = folder / "manifest.json"
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
        if recorded.get("task") == task and isinstance(recorded.get("data"), dict):
            return Profile(**recorded["data"]), f"{manifest} (written by prepare)"
    except (OSError, ValueError, TypeError):
        pass
    if path is None or not path.is_file() or task not in CONVERTERS:
        return None, ""
    conversations = []
    try:
        for row in read_rows(path):
            if len(conversations) >= SAMPLED:
                break
            if row.record is not None:
                try:
                    conversations.append(CONVERTERS[task](row.record))
                except Exception:  # noqa: BLE001 - a row the recipe can't map says nothing of the kind
                    continue
    except OSError:
        return None, ""
    return (profile(conversations), f"its first {len(conversations)} rows") if conversations else (None, "")


def _located(data: str) -> tuple[Path | None, Path]:
    """The data file to look at and the folder it lies in: ``data`` and its folder, or for a folder (loaded with
    ``data_dir=``, which reads its train files) its first train file, else its first JSON file."""
    path = Path(data).expanduser()
    if not path.is_dir():
        return path, path.parent
    files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl") and p.is_file())
    return next((p for p in files if "train" in p.name), files[0] if files else None), path


def questions(path: Path, limit: int = EVALUATION_QUESTIONS) -> list[str]:
    """The first turns' inputs of a conversation-form file."""
    from xtuner_recipes.rows import read_rows

    found = []
    for row in read_rows(path):
        turns = (row.record or {}).get("conversation")
        if isinstance(turns, list) and turns and isinstance(turns[0], dict) and isinstance(turns[0].get("input"), str):
            found.append(turns[0]["input"])
        if len(found) >= limit:
            break
    return found


def held_out_questions(data: str) -> list[str]:
    """The first questions of ``test.jsonl`` beside ``data`` (prepare's held-out split), or none."""
    path, folder = _located(data)
    test = folder / "test.jsonl"
    if not test.is_file() or path is None or test.resolve() == path.resolve():
        return []
    return questions(test)


def settings_for(task: str, data: str) -> tuple[dict, list[tuple[str, str]]]:
    """``SYSTEM`` and ``evaluation_inputs`` that fit ``data``, and ``(setting, note)`` pairs saying what was
    chosen and why (so that a caller drops the note of a setting the user gave)."""
    if task != "medqa":
        return {}, []
    found, source = for_data(task, data)
    if found is None:
        return {}, []
    settings, notes = {}, []
    if found.kind == "medication-qa":
        settings["SYSTEM"] = found.system or DRUGQA_SYSTEM
        settings["evaluation_inputs"] = MEDICATION_QUESTIONS
        notes.append(("SYSTEM", f"the data is free-text medication Q&A (MedQA2019's DrugQA), by {source}: its "
                                "system prompt is the config's SYSTEM"))
    elif found.kind == "medqa-exam":
        settings["SYSTEM"] = SYSTEM_PROMPTS.get(found.language, SYSTEM_PROMPTS["en"])
        if found.language != "en":
            notes.append(("SYSTEM", f"the data is MedQA exam questions in {found.language}, by {source}: SYSTEM in "
                                    "that language"))
    elif found.system:  # rows that carry their own system prompt (the tutorial's MedQA2019-structured files)
        settings["SYSTEM"] = found.system
        notes.append(("SYSTEM", f"the data's rows carry their own system prompt, by {source}: it is the config's "
                                "SYSTEM, so that training, evaluation and chat use the prompt the rows were written with"))
    if found.kind == "conversation" and not found.system:
        return settings, notes  # data of no kind this recipe knows: the recipe's own questions stay
    held_out = held_out_questions(data)
    if held_out:
        settings["evaluation_inputs"] = held_out
        notes.append(("evaluation_inputs", f"evaluation_inputs: the first {len(held_out)} questions of the held-out "
                                           "test.jsonl beside the data, which training never sees"))
    elif found.kind == "conversation" and (path := _located(data)[0]) is not None and (asked := questions(path, 2)):
        settings["evaluation_inputs"] = asked
        notes.append(("evaluation_inputs", f"evaluation_inputs: the first {len(asked)} questions of the data itself "
                                           "(no held-out test.jsonl beside it: `prepare --test-ratio` makes one)"))
    return settings, notes
