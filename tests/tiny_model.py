"""Build a tiny, randomly initialised Llama-shaped model and a sentencepiece tokenizer trained on fixture text."""

import json
from pathlib import Path

FIXTURE_TEXT = Path(__file__).parent / "fixtures" / "data"


def build_tiny_model(folder: Path, *, max_position_embeddings: int = 2048, weights: bool = True) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    lines = []
    for path in sorted(FIXTURE_TEXT.glob("*.jsonl")):
        for row in path.read_text(encoding="utf-8").splitlines():
            lines.append(json.dumps(json.loads(row), ensure_ascii=False))
    corpus.write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "sp"), vocab_size=1000, model_type="bpe", hard_vocab_limit=False,
        character_coverage=0.9995, byte_fallback=True, bos_id=1, eos_id=2, unk_id=0, pad_id=-1,
        minloglevel=2,
    )
    tokenizer = LlamaTokenizer(vocab_file=str(folder / "sp.model"), legacy=False)
    tokenizer.save_pretrained(folder)
    corpus.unlink()
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=max_position_embeddings)
    if weights:
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(folder)
    else:
        config.save_pretrained(folder)
    return folder
