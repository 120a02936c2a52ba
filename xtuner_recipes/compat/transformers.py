"""transformers' private attributes, in one place (``tests/test_compat.py`` holds each to transformers 4.48).

- ``PreTrainedTokenizerFast._tokenizer``: the Rust ``tokenizers.Tokenizer``, whose ``encode_batch`` counts
  tokens without building a Python list of ids for every text.
"""


def rust_backend(tokenizer):
    """The fast tokenizer's Rust backend, or None for a slow (Python) tokenizer."""
    return getattr(tokenizer, "_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
