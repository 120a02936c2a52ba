"""The library call behind ``gen``: a recipe, a model and data in; config source out.

``generate("medqa", "./internlm-chat-7b", data="./medqa/train.jsonl").output.name`` is
``internlm_chat_7b_qlora_medqa_e3.py``.
"""

import difflib
import shlex
from dataclasses import dataclass
from pathlib import Path

from xtuner_recipes import chat_format, data_profile, model_info, xtuner_info
from xtuner_recipes.errors import OverrideError, RecipeError
from xtuner_recipes.paths import is_local_data, is_spreadsheet, looks_local
from xtuner_recipes.recipes import Recipe, get_recipe
from xtuner_recipes.resources import resource_path
from xtuner_recipes.rewrite import apply_overrides
from xtuner_recipes.rewrite.api import parse_config
from xtuner_recipes.rewrite.locate import bindings, code_of
from xtuner_recipes.rewrite.overrides import Override
from xtuner_recipes.rewrite.values import literal


@dataclass(frozen=True)
class GenResult:
    """A generated config, not yet written."""

    recipe: Recipe
    output: Path
    code: str
    prompt_template: str
    template_source: str  # why this template: "--set", "config.json (model_type internlm2)", "recipe default"
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    max_length_capped: bool = False  # lowered to the model's max_position_embeddings


def normalize_template(override: Override) -> Override:
    """Let ``prompt_template=internlm2_chat`` mean ``PROMPT_TEMPLATE.internlm2_chat``; reject unknown names."""
    if override.path != ("prompt_template",) or override.value is None:
        return override
    name = override.value.strip().strip("'\"")
    if name.startswith("PROMPT_TEMPLATE."):
        name = name.split(".", 1)[1]
    known = xtuner_info.prompt_template_names()
    if known and name not in known:
        close = difflib.get_close_matches(name, sorted(known), n=2)
        hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(sorted(known))}"
        raise OverrideError(f"unknown prompt template {name!r}", hint=hint)
    return Override(override.path, f"PROMPT_TEMPLATE.{name}")


def _template_choice(recipe: Recipe, model: str, overrides: list[Override]) -> tuple[str | None, str]:
    """(template to set or None when --set decides, why)."""
    if any(o.path == ("prompt_template",) for o in overrides):
        return None, "--set prompt_template"
    config = model_info.read_config(model)
    join = chat_format.model_join(model) if config is not None else None
    fits = chat_format.matching_templates(join) if join else []
    if fits:
        guess = model_info.template_for(config)
        chosen = guess if guess in fits else fits[0]
        return chosen, "the model's own chat template (tokenizer_config.json)"
    if config is not None:
        chosen = model_info.template_for(config)
        if chosen:
            return chosen, f"config.json (model_type {config.get('model_type')!r})"
        return recipe.prompt_template, f"recipe default (model_type {config.get('model_type')!r} not known)"
    return recipe.prompt_template, "recipe default (no config.json to read)"


def _warnings(model: str, data: str) -> list[str]:
    found = []
    model_dir = Path(model).expanduser()
    if looks_local(model):
        if not model_dir.exists():
            found.append(f"model directory {model} does not exist yet; training will fail until it does")
        elif not (model_dir / "config.json").is_file():
            found.append(f"{model} has no config.json: is it a Hugging Face model directory?")
    elif not model_dir.exists():
        found.append(f"{model} is not a local directory: xtuner will download it from the hub")
    if is_local_data(data) and not Path(data).expanduser().exists():
        found.append(f"data {data} does not exist yet")
    return found


def _max_length_cap(template_source: str, model: str, overrides) -> tuple[Override, str] | None:
    """``max_length`` lowered to the model's ``max_position_embeddings`` when the recipe's is longer
    (and the user set none): validate's M005 would refuse the config otherwise."""
    if any(o.path == ("max_length",) for o in overrides):
        return None
    config = model_info.read_config(model) if looks_local(model) else None
    limit = config.get("max_position_embeddings") if config else None
    is_literal, length = literal(code_of(bindings(parse_config(template_source))["max_length"].value))
    if not (isinstance(limit, int) and is_literal and isinstance(length, int) and limit < length):
        return None
    return (Override(("max_length",), str(limit)),
            f"max_length {length} lowered to {limit}, the model's max_position_embeddings")


def generate(
    task: str,
    model: str,
    *,
    data: str | None = None,
    overrides: list[Override] = (),
    output: Path | None = None,
    gpus: int = 1,
) -> GenResult:
    """Render recipe ``task``'s template for ``model`` and ``data`` with ``overrides`` applied."""
    recipe = get_recipe(task)
    data = data or recipe.default_data
    if is_spreadsheet(data):
        # xtuner's json loader can't read a spreadsheet; the tutorial's MedQA2019.xlsx needs converting.
        raise RecipeError(f"{data} is a spreadsheet, not JSON or JSONL data",
                          hint=f"convert it first: xtuner-recipes prepare {recipe.name} {shlex.quote(data)} -o "
                               f"{recipe.name}-data, then --data {recipe.name}-data/train.jsonl")
    overrides = [normalize_template(o) for o in overrides]
    fitted, keyed_notes = data_profile.settings_for(recipe.name, data)  # the data's own system prompt, held-out questions
    given = {o.key for o in overrides}
    fit_notes = [note for key, note in keyed_notes if key not in given]  # --set wins, and its note goes too
    overrides = [Override((key,), repr(value)) for key, value in fitted.items() if key not in given] + overrides
    template, why = _template_choice(recipe, model, overrides)
    edits = [Override(("pretrained_model_name_or_path",), repr(model))]
    if template is not None:
        edits.append(Override(("prompt_template",), f"PROMPT_TEMPLATE.{template}"))
    source_path = resource_path("templates", recipe.template)
    capped = _max_length_cap(source_path.read_text(encoding="utf-8"), model, overrides)
    if capped is not None:
        edits.append(capped[0])
    result = apply_overrides(
        source_path.read_text(encoding="utf-8"), edits + list(overrides), data_path=data, filename=str(source_path)
    )
    notes = list(fit_notes) + list(result.notes) + ([capped[1]] if capped is not None else [])
    if gpus != 1:
        from xtuner_recipes.batch import gpus_override

        edit, sentence = gpus_override(result.code, gpus, str(source_path))
        if edit is not None:
            result = apply_overrides(result.code, [edit], filename=str(source_path))
        notes.append(sentence)
    final = {name: code_of(binding.value) for name, binding in bindings(parse_config(result.code)).items()}
    chosen = final.get("prompt_template", "").removeprefix("PROMPT_TEMPLATE.")
    if output is None:
        is_literal, epochs = literal(final.get("max_epochs", ""))
        suffix = f"_e{epochs}" if is_literal and isinstance(epochs, int) else ""
        output = Path(f"{model_info.model_slug(model)}_qlora_{recipe.name}{suffix}.py")
    return GenResult(recipe, Path(output), result.code, chosen, why, tuple(_warnings(model, data)), tuple(notes),
                     max_length_capped=capped is not None)

