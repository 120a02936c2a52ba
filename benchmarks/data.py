"""Synthetic data in the public formats, at the real datasets' sizes, and the tiny model."""

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the a patient dose tablet fever infection pressure heart liver kidney therapy symptom daily weather "
         "city query model agent answer question because therefore however result value search tool call "
         "explain network attention layer train data token learn rate").split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def oasst1_rows(count: int = 9846, *, seed: int = 0, broken_every: int = 0):
    """openassistant-guanaco rows of ~4.7 KB (9,846 rows ≈ 46 MB, as the real train file)."""
    rng = random.Random(seed)
    for i in range(count):
        if broken_every and i % broken_every == 3:
            yield {"title": f"row {i} has no text"}
        else:
            yield {"text": f"### Human: {_text(rng, 60)}?### Assistant: {_text(rng, 640)} {i}"}


def msagent_rows(count: int = 100_000, *, seed: int = 0):
    """MSAgent-Bench rows (conversations as a JSON string), each different, ~1.6 KB."""
    rng = random.Random(seed)
    for i in range(count):
        api = {"name": f"modelscope_tool-{i % 50}", "description": _text(rng, 12),
               "paths": [{"name": "run", "parameters": [{"name": "city", "description": "city", "required": "True"}]}]}
        call = json.dumps({"api_name": api["name"], "url": "http://api.example/run", "parameters": {"city": f"c{i}"}})
        turns = [
            {"from": "system", "value": "You are an assistant that can use these APIs:\n" + json.dumps(api)},
            {"from": "user", "value": f"{_text(rng, 20)} {i}?"},
            {"from": "assistant", "value": f"{_text(rng, 10)}<|startofthink|>```JSON\n{call}\n```<|endofthink|>\n\n"
                                           f"<|startofexec|>```JSON\n{{\"result\": \"{_text(rng, 6)}\"}}\n```"
                                           f"<|endofexec|>\n{_text(rng, 60)}"},
        ]
        yield {"id": f"MS_Agent_Bench_{i}", "conversations": json.dumps(turns, ensure_ascii=False)}


def write_jsonl(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def tiny_model(folder: Path) -> Path:
    """The tests' tiny random Llama and sentencepiece tokenizer."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_model import build_tiny_model

    return build_tiny_model(folder)
