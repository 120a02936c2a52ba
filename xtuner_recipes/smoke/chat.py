"""One non-interactive chat turn through the config's own prompt template."""


def build_prompt(template: dict, question: str, system: str | None) -> str:
    """The text ``xtuner chat`` sends for a first turn.

        >>> build_prompt({"INSTRUCTION": "<u>{input}</u>", "SYSTEM": "<s>{system}</s>"}, "hi", "be brief")
        '<s>be brief</s><u>hi</u>'
    """
    prompt = template.get("SYSTEM", "").format(system=system) if system else ""
    return prompt + template["INSTRUCTION"].format(input=question, round=1)


def chat_turn(config_path: str, model_dir: str, *, device: str = "cpu", max_new_tokens: int = 16) -> tuple[str, str]:
    """``(question, reply)``: the config's first evaluation input answered by the merged model."""
    import torch
    from mmengine.config import Config
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = Config.fromfile(config_path)
    template = cfg.get("prompt_template") or {"INSTRUCTION": "{input}"}
    inputs = cfg.get("evaluation_inputs") or ["Hello"]
    question = inputs[0]
    prompt = build_prompt(template, question, cfg.get("SYSTEM"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, trust_remote_code=True).to(device)
    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
    with torch.no_grad():
        output = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    new = output[0, ids.shape[1]:]
    if new.numel() == 0:
        raise RuntimeError("the merged model generated no token")
    return question, tokenizer.decode(new, skip_special_tokens=True)
