"""How xtuner 0.2.0 lays out one conversation in tokens — its ``template_map_fn`` and ``encode_fn``,
counted instead of built.

xtuner encodes each turn's input, output and separator on its own (no special tokens), puts
the tokenizer's bos before a turn when the previous turn ended with an eos (and before the
first), the eos after an output unless the template's suffix stands in for it, and cuts the
sample at ``max_length``. Labels are the output and eos tokens (unless ``output_with_loss`` is
false); a sample with no label left after the cut is dropped. ``tests/test_encoding.py`` holds
these functions equal to xtuner's own on generated conversations and three tokenizer families.

    >>> layout([Turn(input=3, output=2, sep=0, eos=True)], bos=1, eos=1, max_length=100)
    Layout(length=7, labelled=3, full_length=7)
"""

from dataclasses import dataclass

# xtuner's get_bos_eos_token_ids: these tokenizers get no bos, ChatGLM's gets two fixed ids.
NO_BOS_CLASSES = ("QWenTokenizer", "QWen2Tokenizer", "Qwen2TokenizerFast")
CHATGLM_BOS = (64790, 64792)


@dataclass(frozen=True)
class Special:
    """How many bos and eos ids xtuner adds; None where the tokenizer has none, which fails
    ``encode_fn`` wherever it is added (bos: every sample; eos: a turn that needs one); or why
    ``encode_fn`` fails on this tokenizer before any of that."""

    bos: int | None = 0
    eos: int | None = 0
    failure: str | None = None
    name: str = ""


def special(tokenizer) -> Special:
    """The bos/eos ids xtuner's ``get_bos_eos_token_ids`` picks, counted."""
    name = type(tokenizer).__name__
    eos = getattr(tokenizer, "eos_token_id", None)
    if name in NO_BOS_CLASSES:
        if eos is None:
            return Special(None, None, f"{name} has no eos_token: xtuner asserts 'Please set eos_token for Qwen "
                                       "tokenizer!'", name)
        bos = []
    elif name == "ChatGLMTokenizer":
        bos = list(CHATGLM_BOS)
    else:
        bos = getattr(tokenizer, "bos_token_id", None)
    counts = Special(_ids(bos), _ids(eos), name=name)
    if counts.bos is None:
        return Special(None, counts.eos, missing(name, "bos_token"), name)
    return counts


def missing(name: str, which: str) -> str:
    return (f"the tokenizer ({name}) has no {which}: xtuner's encode_fn adds its id to every "
            + ("sample" if which == "bos_token" else "turn that ends with an eos (the template has no SUFFIX_AS_EOS)")
            + f" and fails (TypeError); only {', '.join(NO_BOS_CLASSES)} go without a bos")


def _ids(value) -> int | None:
    """How many ids ``input_ids += value`` adds, after xtuner wraps an int in a list; None: it fails."""
    if isinstance(value, int):
        return 1
    return len(value) if isinstance(value, list) else None


@dataclass(frozen=True)
class Turn:
    """One turn after the template, in tokens."""

    input: int
    output: int
    sep: int
    eos: bool = True  # need_eos_token
    loss: bool = True  # output_with_loss


@dataclass(frozen=True)
class Layout:
    length: int  # tokens after the cut at max_length
    labelled: int  # of those, tokens with a label (output and eos); 0: xtuner drops the sample
    full_length: int  # tokens before the cut


def layout(turns: list[Turn], *, bos: int, eos: int | None, max_length: int) -> Layout:
    """The sample's length and labelled tokens; ``eos`` None: the tokenizer has none (see ``Special``)."""
    position, labelled, needs_bos = 0, 0, True
    for turn in turns:
        if needs_bos:
            position += bos
        position += turn.input
        span = turn.output + (eos or 0 if turn.eos else 0)  # output, then eos: both labelled, or neither
        if turn.loss:
            labelled += max(0, min(position + span, max_length) - position)
        position += span + turn.sep
        needs_bos = turn.eos
    return Layout(min(position, max_length), labelled, position)


def render(conversation: list[dict], template: dict | None) -> list[dict]:
    """The turns as xtuner's ``template_map_fn`` leaves them (``template`` None: no template step).

        >>> render([{"system": "s", "input": "q", "output": "a"}],
        ...        {"SYSTEM": "<{system}>", "INSTRUCTION": "[{input}]", "SUFFIX": "!"})[0]["input"]
        '<s>[q]'
    """
    if template is None:
        return conversation
    rendered = []
    for number, turn in enumerate(conversation, start=1):
        turn = dict(turn)
        value = turn.get("input", "")
        text = template["INSTRUCTION"].format(input="" if value is None else value, round=number)
        system = turn.get("system", "")
        if system != "" and system is not None:
            text = template.get("SYSTEM", "{system}").format(system=system) + text
        turn["input"] = text
        if template.get("SUFFIX"):
            turn["output"] = turn.get("output", "") + template["SUFFIX"]
        turn["need_eos_token"] = not template.get("SUFFIX_AS_EOS", False)
        turn["sep"] = template.get("SEP", "")
        rendered.append(turn)
    return rendered


def texts(turns: list[dict]) -> list[str]:
    """What xtuner encodes, in order: each turn's input, output and (when not empty) separator."""
    out = []
    for turn in turns:
        out += [turn["input"], turn["output"]]
        if turn.get("sep", ""):
            out.append(turn["sep"])
    return out


def turns_of(rendered: list[dict], counts: list[int]) -> list[Turn]:
    """``rendered``'s turns with ``counts`` (one per text of ``texts(rendered)``, in order)."""
    out, position = [], 0
    for turn in rendered:
        has_sep = bool(turn.get("sep", ""))
        out.append(Turn(counts[position], counts[position + 1], counts[position + 2] if has_sep else 0,
                        eos=bool(turn.get("need_eos_token", True)), loss=bool(turn.get("output_with_loss", True))))
        position += 3 if has_sep else 2
    return out
