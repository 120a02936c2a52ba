"""The M checks: the model a config points at, from its directory alone (no weights are loaded)."""

from pathlib import Path

from xtuner_recipes import chat_format, model_info, xtuner_info
from xtuner_recipes.paths import looks_local
from xtuner_recipes.findings import Finding
from xtuner_recipes.validate.checks import Result, check

CODES = ("M001", "M002", "M003", "M004", "M005", "M006", "M007", "M008")

KEY = "pretrained_model_name_or_path"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json", "qwen.tiktoken")


@check("model", level="full", codes=CODES, reads=("settings",), provides=("model_config",))
def model_check(settings) -> Result:
    """The model the config trains (``model.llm``), against the config's max_length and template."""
    findings, stats, config = check_model(settings.model_path, max_length=settings.max_length,
                                          template=settings.template)
    return Result(findings, stats, {"model_config": config})


def check_model(path, *, max_length, template) -> tuple[list[Finding], dict, dict | None]:
    """Findings, stats and the parsed ``config.json`` (None when there is none)."""
    if not isinstance(path, str):
        return [], {}, None
    folder = Path(path).expanduser()
    if not folder.exists():
        if looks_local(path):
            return [Finding("M001", "error", f"model directory {path} does not exist", key=KEY)], {}, None
        config, source = model_info.hub_config(path)
        stats = {"model_config_source": source} if config else {}
        return [Finding("M002", "warning", f"{path} is not a local directory: it will be downloaded from the hub",
                        key=KEY, hint="download it first to check it here")], stats, config
    findings = []
    config = model_info.read_config(path)
    if config is None:
        findings.append(Finding("M003", "error", f"{path} has no readable config.json", key=KEY))
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        findings.append(Finding("M004", "error", f"{path} has no tokenizer files ({', '.join(TOKENIZER_FILES)})",
                                key=KEY))
    if config is None:
        return findings, {}, None
    stats = {"model_type": config.get("model_type"), "max_position_embeddings": config.get("max_position_embeddings")}
    limit = config.get("max_position_embeddings")
    if isinstance(limit, int) and isinstance(max_length, int) and max_length > limit:
        if model_info.learned_positions(config):  # a position past the table: the embedding lookup fails
            findings.append(Finding("M005", "error", f"max_length {max_length} exceeds the model's "
                                    f"max_position_embeddings {limit}, and {config.get('model_type')} learns one "
                                    "embedding a position: a longer sample fails in the forward pass",
                                    key="max_length", hint=f"set max_length={limit} or lower"))
        else:
            findings.append(Finding("M005", "warning", f"max_length {max_length} exceeds the model's "
                                    f"max_position_embeddings {limit}: its position encoding (rotary for "
                                    f"{config.get('model_type')}) trains past it, but the model never saw those "
                                    "positions, and quality past them may drop", key="max_length",
                                    hint=f"set max_length={limit} or lower, or extend it with rope_scaling"))
    own = chat_format.model_join(path) if template else None
    chosen = chat_format.template_join(xtuner_info.prompt_template(template) or {}) if own is not None else None
    if own is not None and chosen is not None:
        # The model's own chat template is evidence: it overrides the model_type guess below.
        if own != chosen:
            fits = chat_format.matching_templates(own)
            findings.append(Finding(
                "M008", "error", f"prompt template {template!r} puts {chosen!r} between the user's message and the "
                f"reply; the model's own chat template (tokenizer_config.json) puts {own!r}: training would teach "
                "it another chat format than the one it was tuned with", key="prompt_template",
                hint=(f"set prompt_template=PROMPT_TEMPLATE.{fits[0]}" if fits else
                      "no xtuner template matches: write one with the model's format")))
        expected = None
    else:
        expected = model_info.template_for(config)
    if expected and template and template != expected:
        # model_type alone does not name a chat format (chatglm is ChatGLM2 and 3, Zephyr is mistral,
        # Vicuna and Yi are llama): a guess, so a warning.
        findings.append(Finding("M006", "warning", f"prompt template {template!r} does not match model_type "
                                f"{config.get('model_type')!r}, which usually chats with {expected!r}",
                                key="prompt_template", hint=f"set prompt_template=PROMPT_TEMPLATE.{expected}"))
    name = folder.resolve().name.lower()
    if template and template != "default" and not any(word in name for word in ("chat", "instruct", "sft")):
        findings.append(Finding("M007", "warning", f"{folder.name} looks like a base model: the {template} template "
                                "teaches it a chat format from scratch, and a few epochs of this data will chat "
                                "worse than the chat model tuned from it", key=KEY,
                                hint=f"train the chat model of {folder.name} instead (as the tutorial trains "
                                     "internlm-chat-7b, not internlm-7b), or use the default template for a "
                                     "base model"))
    return findings, stats, config
