"""The model's tokenizer in a child process that loads while the parent imports torch.

``validate`` needs torch (mmengine imports it) and transformers' tokenizer, each a second
of one core. Transformers loads a tokenizer without torch when ``USE_TORCH=0``, so a child
started before the config loads has its tokenizer ready on the other core by the time the
data has been read. The child counts with the parent's own function, ``tokens.count_tokens``.

Protocol, one JSON document per line: the child first answers ``{"ready": true, "special": {...}}`` or
``{"error": reason}``; then each request ``["text", ...]`` gets back ``[count, ...]``.
The child's own stdout goes to its stderr, so a chatty tokenizer can't break the protocol.

With ``counter = TokenizerProcess("./tiny-model")``, ``counter.error()`` is None once it loaded and
``counter.count(["hello world"])`` is ``[2]`` for a tokenizer that makes two tokens of it.
"""

import json
import os
import subprocess
import sys

# -P (Python 3.11+): a module in the working directory, say a config repository's json.py,
# must not shadow the ones the child imports.
SAFE_PATH = ["-P"] if sys.version_info >= (3, 11) else []


class TokenizerProcess:
    """A child holding ``AutoTokenizer.from_pretrained(model_path)``; started on construction."""

    def __init__(self, model_path: str) -> None:
        self.model_path = model_path
        env = {**os.environ, "USE_TORCH": "0", "USE_TF": "0", "USE_FLAX": "0", "TRANSFORMERS_VERBOSITY": "error"}
        self._process = subprocess.Popen(
            [sys.executable, *SAFE_PATH, "-m", __name__, model_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env, text=True, encoding="utf-8",
        )
        self._error: str | None = None
        self._answered = False

    def error(self) -> str | None:
        """None once the tokenizer has loaded, else why it did not (waits for the child)."""
        if not self._answered:
            self._answered = True
            answer = self._read()
            self._error = answer.get("error") if isinstance(answer, dict) else "the tokenizer process did not answer"
            if self._error is None:
                from xtuner_recipes.validate.tokens.layout import Special

                self._special = Special(**answer.get("special", {}))
        return self._error

    @property
    def special(self):
        """The bos/eos ids xtuner adds with this tokenizer (``layout.Special``)."""
        if self.error() is not None:
            raise RuntimeError(self._error)
        return self._special

    def count(self, texts: list[str]) -> list[int]:
        """Tokens in each text, without special tokens."""
        if self.error() is not None:
            raise RuntimeError(self._error)
        try:
            self._process.stdin.write(json.dumps(texts) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError("the tokenizer process ended without an answer") from None
        counts = self._read()
        if isinstance(counts, dict) and "error" in counts:
            raise RuntimeError(counts["error"])
        if not isinstance(counts, list) or len(counts) != len(texts):
            raise RuntimeError("the tokenizer process ended without an answer")
        return counts

    def close(self) -> None:
        """End the child now: it holds nothing worth a clean shutdown, and waiting for one costs."""
        self._process.kill()
        self._process.wait()
        self._process.stdin.close()
        self._process.stdout.close()

    def _read(self):
        line = self._process.stdout.readline()
        try:
            return json.loads(line) if line else None
        except json.JSONDecodeError:
            return None


def _serve(model_path: str) -> int:
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever the tokenizer's code prints goes to stderr, not into the answers
    sys.stdout = sys.stderr
    import dataclasses

    from xtuner_recipes.validate.tokens.layout import special
    from xtuner_recipes.validate.tokens.tokenizer import count_tokens, load_tokenizer

    tokenizer, reason = load_tokenizer(model_path)
    ready = {"ready": True, "special": dataclasses.asdict(special(tokenizer))} if tokenizer is not None else None
    answers.write(json.dumps(ready or {"error": reason}) + "\n")
    answers.flush()
    if tokenizer is None:
        return 1
    for line in sys.stdin:
        try:
            answer = count_tokens(tokenizer, json.loads(line))
        except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it there
            answer = {"error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1]))
