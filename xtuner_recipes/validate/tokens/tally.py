"""A dataset's token counts, taken a chunk of conversations at a time, and what they say.

Only three integers a sample are kept (its length before the cut, and for the samples xtuner
keeps, the length after the cut and the labelled tokens), so memory grows by 12 bytes a row,
not by the rows. Counting runs on a worker thread while the next chunk is read and mapped: the
tokenizer (Rust, or the child process of ``tokens.child``) works without the GIL.

Used as ``tally = Tally(counting, template, max_length=2048)``, then ``tally.add(conversations)`` per
chunk, and ``stats, findings, samples = tally.finish(pack=True)`` at the end.
"""

from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from xtuner_recipes.validate.tokens import layout, packing
from xtuner_recipes.findings import Finding

BATCH = 1000  # texts per request to the tokenizer
EXAMPLES = 3  # samples kept whole, for the report to show through the template


class TokenizeError(Exception):
    """The template, xtuner's layout or the tokenizer failed on the data (a finding, not a bug)."""


class Tally:
    def __init__(self, counting, template: dict | None, max_length: int,
                 progress: Callable[[str, int, int | None], None] | None = None) -> None:
        self.counting, self.template, self.max_length, self.progress = counting, template, max_length, progress
        self.full = array("i")  # every sample: tokens before the cut
        self.kept = array("i")  # samples xtuner keeps: tokens after the cut, in data order
        self.labelled = array("i")  # and of those, the tokens with a label
        self.texts_done = 0
        self.eos_missing = 0  # samples with a turn that needs the eos the tokenizer lacks
        self.examples: list[tuple[list[dict], list]] = []  # the first samples: rendered turns, their token counts
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize")
        self._pending = None

    def add(self, conversations: list[list[dict]]) -> None:
        """Count a chunk of mapped conversations; the previous chunk's counts are taken in now.
        Raises ``TokenizeError`` when the template, the layout or the tokenizer fails on them."""
        try:
            rendered = [layout.render(conversation, self.template) for conversation in conversations]
            per_sample = [layout.texts(turns) for turns in rendered]
            texts = [text for sample in per_sample for text in sample]
        except Exception as error:  # noqa: BLE001 - a turn xtuner's template or encode_fn fails on
            raise TokenizeError(f"{type(error).__name__}: {error}") from error
        job = self._pool.submit(self._count, texts)
        self._settle()
        self._pending = (rendered, [len(sample) for sample in per_sample], job)

    def _count(self, texts: list[str]) -> list[int]:
        counts = []
        for start in range(0, len(texts), BATCH):
            counts += self.counting.count(texts[start:start + BATCH])
        return counts

    def _settle(self) -> None:
        if self._pending is None:
            return
        rendered, sizes, job = self._pending
        self._pending = None
        try:
            counts, position = job.result(), 0
        except Exception as error:  # noqa: BLE001 - the tokenizer failing on the data
            raise TokenizeError(f"{type(error).__name__}: {error}") from error
        special = self.counting.special
        for turns, size in zip(rendered, sizes):
            shaped = layout.turns_of(turns, counts[position:position + size])
            if len(self.examples) < EXAMPLES:
                self.examples.append((turns, shaped))
            if special.eos is None and any(turn.eos for turn in shaped):
                self.eos_missing += 1
            shape = layout.layout(shaped, bos=special.bos, eos=special.eos, max_length=self.max_length)
            position += size
            self.full.append(shape.full_length)
            if shape.labelled:
                self.kept.append(shape.length)
                self.labelled.append(shape.labelled)
        self.texts_done += position
        if self.progress is not None:
            self.progress("texts tokenized", self.texts_done, None)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def finish(self, *, pack: bool, num_proc: int | None = 32, shuffle: bool = True
               ) -> tuple[dict, list[Finding], tuple[int, int]]:
        """Stats, findings and the (fewest, most) training samples after packing."""
        try:
            self._settle()
        finally:
            self.close()
        if self.progress is not None:
            self.progress("texts tokenized", self.texts_done, self.texts_done)
        return summarize(self, pack=pack, num_proc=num_proc, shuffle=shuffle)


def _quantiles(values) -> dict:
    import numpy as np

    ordered = np.sort(np.asarray(values))
    return {"p50": int(ordered[len(ordered) // 2]), "p95": int(ordered[max(0, -(-95 * len(ordered) // 100) - 1)]),
            "max": int(ordered[-1])}


def summarize(tally: Tally, *, pack: bool, num_proc: int | None, shuffle: bool
              ) -> tuple[dict, list[Finding], tuple[int, int]]:
    """A sample whose first label falls past ``max_length`` is dropped by xtuner; when it drops
    them all, training fails with ``Column 'length' doesn't exist``."""
    import numpy as np

    total, max_length = len(tally.full), tally.max_length
    if not total:
        return {}, [], (0, 0)
    every = np.frombuffer(tally.full, dtype=np.int32)
    kept = np.frombuffer(tally.kept, dtype=np.int32)
    labelled = np.frombuffer(tally.labelled, dtype=np.int32)
    full, cut = _quantiles(every), int((every > max_length).sum())
    stats = {"tokens_p50": full["p50"], "tokens_p95": full["p95"], "tokens_max": full["max"],
             "cut_share": round(cut / total, 4)}
    if len(kept):
        stats["output_tokens"] = _quantiles(labelled)
        stats["input_tokens"] = _quantiles(kept - labelled)
        stats["longest_sample"] = int(kept.max())  # after the cut: what the longest batch pads to
    if pack:
        low, high = packing.count_range(tally.kept, chunk=max_length, num_proc=num_proc, shuffle=shuffle)
        stats["samples_after_packing"] = low
        if high != low:
            stats["samples_after_packing_range"] = [low, high]
    else:
        low = high = len(kept)
        stats["samples"] = low
    findings = []
    if tally.eos_missing:
        special = tally.counting.special
        findings.append(Finding("T005", "error", f"{tally.eos_missing} of {total} samples: "
                                + layout.missing(special.name, "eos_token")))
    dropped = total - len(kept)
    if dropped:
        everything = dropped == total
        findings.append(Finding(
            "T003", "error" if everything else "warning",
            f"{dropped} of {total} samples have no output token within max_length {max_length}: "
            "xtuner drops them" + (", leaving no data (training fails with \"Column 'length' doesn't exist\")"
                                   if everything else ""),
            key="max_length", hint="raise max_length, or shorten the system prompt and inputs"))
    if cut:
        severity = "warning" if cut / total > 0.05 else "info"
        findings.append(Finding("T001", severity, f"{cut} of {total} samples ({cut / total:.1%}) are "
                                f"longer than max_length {max_length} and will be cut", key="max_length"))
    return stats, findings, (low, high)
