"""A chat model's own format (``chat_template`` in its ``tokenizer_config.json``) against xtuner's templates.

The evidence is the text each puts between a user's message and the reply — ``[/INST]``,
``<|im_end|><|im_start|>assistant``, ``<eoh><|Bot|>:`` — compared without whitespace. A model's
``model_type`` only guesses at its format (``chatglm`` is ChatGLM2 and 3, Zephyr is ``mistral``);
its chat template says it.

    >>> template_join({"INSTRUCTION": "[INST] {input} [/INST]"})
    '[/INST]'
"""

import json
from pathlib import Path

USER, REPLY = "\u2402USER\u2402", "\u2402REPLY\u2402"  # markers no template contains


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _token(value) -> str:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def model_join(model_path: str) -> str | None:
    """What the model's chat template puts between a user turn and the reply, or None when the
    folder has no chat template (or it can't be rendered here)."""
    try:
        config = json.loads((Path(model_path).expanduser() / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(source, list):  # [{"name": "default", "template": ...}, ...]
        source = next((t.get("template") for t in source if isinstance(t, dict) and t.get("name") == "default"), None)
    if not isinstance(source, str):
        return None
    try:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message):
            raise ValueError(message)

        # transformers renders chat templates the same way: a sandbox, trim_blocks and lstrip_blocks.
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        environment.globals["raise_exception"] = raise_exception
        text = environment.from_string(source).render(
            messages=[{"role": "user", "content": USER}, {"role": "assistant", "content": REPLY}],
            bos_token=_token(config.get("bos_token")), eos_token=_token(config.get("eos_token")),
            add_generation_prompt=False)
    except Exception:  # noqa: BLE001 - a template this sandbox can't render is no evidence either way
        return None
    if USER not in text or REPLY not in text.split(USER, 1)[1]:
        return None
    return _squeeze(text.split(USER, 1)[1].split(REPLY, 1)[0])


def template_join(template: dict) -> str | None:
    """What an xtuner prompt template puts between the user's input and the reply."""
    instruction = template.get("INSTRUCTION") if isinstance(template, dict) else None
    if not isinstance(instruction, str) or "{input}" not in instruction:
        return None
    return _squeeze(instruction.split("{input}", 1)[1].replace("{round}", "1"))


def matching_templates(join: str) -> list[str]:
    """xtuner's templates whose join is ``join``."""
    from xtuner_recipes.xtuner_info import prompt_template, prompt_template_names

    return sorted(name for name in prompt_template_names()
                  if template_join(prompt_template(name) or {}) == join)
