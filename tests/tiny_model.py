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


def build_tiny_qwen2(folder: Path, *, max_position_embeddings: int = 2048) -> Path:
    """A Qwen2-shaped config (no weights) and a byte-level BPE tokenizer without bos (class Qwen2TokenizerFast),
    trained on fixture text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config

    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(json.loads(row), ensure_ascii=False)
             for path in sorted(FIXTURE_TEXT.glob("*.jsonl")) for row in path.read_text(encoding="utf-8").splitlines()]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(lines, trainers.BpeTrainer(
        vocab_size=800, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.save_pretrained(folder)
    # Saved as Qwen2's class, as Qwen2 model folders are: xtuner adds no bos for it (and fails without one for
    # a plain PreTrainedTokenizerFast).
    settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    settings.update(tokenizer_class="Qwen2Tokenizer", bos_token=None)
    (folder / "tokenizer_config.json").write_text(json.dumps(settings), encoding="utf-8")
    Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2,
                max_position_embeddings=max_position_embeddings).save_pretrained(folder)
    return folder


INTERNLM2_TOKENIZER_CODE = '''\
"""A sentencepiece tokenizer loaded as remote code, the way InternLM2's model folders ship theirs."""
from transformers import LlamaTokenizer


class InternLM2Tokenizer(LlamaTokenizer):
    """InternLM2's layout: bos <s>, eos </s>, chat markers as added special tokens."""
'''


def build_internlm2_style_tokenizer(folder: Path) -> Path:
    """A slow sentencepiece tokenizer behind ``trust_remote_code`` (class InternLM2Tokenizer, as InternLM2
    ships), with bos ``<s>``, eos ``</s>`` and ``<|im_start|>``/``<|im_end|>`` as added special tokens."""
    from transformers import LlamaTokenizer

    build_tiny_model(folder, weights=False)
    tokenizer = LlamaTokenizer.from_pretrained(folder, legacy=False)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.save_pretrained(folder)
    (folder / "tokenization_internlm2.py").write_text(INTERNLM2_TOKENIZER_CODE, encoding="utf-8")
    settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    settings.update(tokenizer_class="InternLM2Tokenizer",
                    auto_map={"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer", None]})
    (folder / "tokenizer_config.json").write_text(json.dumps(settings), encoding="utf-8")
    return folder
