"""xtuner-recipes: generate, rewrite and validate XTuner configs before GPU hours are spent.

Example::

    $ xtuner-recipes gen medqa --model ./internlm-chat-7b --data ./medqa/train.jsonl
"""

__version__ = "0.1.0"
