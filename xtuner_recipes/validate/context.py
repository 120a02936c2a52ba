"""What the checks of a ``full`` run share: the loaded config, its source, the options, and
what earlier checks found (the model's ``config.json``, the training samples).

A check is ``check(context) -> (findings, stats)``; ``runner.FULL_CHECKS`` lists them in order.
"""

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Options:
    sample: int | None = None
    gpus: int | None = None
    strict_env: bool = False
    progress: Callable[[str, int, int | None], None] | None = None
    gpu_mem: float | None = None
    zero_stage: int = 0
    host_mem: float | None = None  # GiB of host memory to check training's estimate against
    offload: tuple[bool, bool] = (False, False)  # DeepSpeed's (optimizer states, parameters) on the CPU


@dataclass
class Context:
    path: str
    config: object  # mmengine Config
    tree: object  # ast.Module
    flat: dict
    options: Options
    early: object = None  # a TokenizerProcess started before the config loaded
    model_config: dict | None = None  # set by the model check
    samples: int | None = None  # training samples per epoch, after packing; set by the data check
    samples_range: tuple[int, int] | None = None  # (fewest, most): packing after a shuffle varies by run
    padded_batches: bool = False  # a dataset is not packed: batches vary in length
    longest_sample: int | None = None  # tokens in the longest sample after the cut, when every row was counted
    samples_estimated: bool = False  # from --sample or without a tokenizer: an estimate
    iters_per_epoch: int | None = None  # set by the schedule check
    total_iters: int | None = None
    warmup_reported: bool = False  # C001 raised: the schedulers' failure is already said
    sample_lengths: object = None  # numpy int32: every kept sample's tokens after the cut, all datasets
    tallies: list = field(default_factory=list)  # (dataset key, Tally) per counted dataset, for the report

    def get(self, key: str, default=None):
        """The setting at a dotted ``key``, building lazy values on the way; ``default`` when absent
        or when building fails (a failing import is L002's to report)."""
        from xtuner_recipes.validate.load import lookup

        try:
            value = lookup(self.config, key)
        except Exception:  # noqa: BLE001 - a lazy import failing here was reported by L002
            return default
        return default if value is None else value

    def raw(self, key: str, default=None):
        """The setting at ``key`` without building anything (lazy imports stay lazy)."""
        node = self.config._cfg_dict
        for part in key.split("."):
            try:
                node = node[int(part)] if isinstance(node, list | tuple) else dict.__getitem__(node, part)
            except (KeyError, IndexError, ValueError, TypeError):
                return default
        return node

    def max_length(self):
        """The max_length the (first) dataset is cut at, else the top-level setting."""
        return self.get("train_dataloader.dataset.max_length") or self.get("max_length")

    def gpus(self) -> int:
        import os

        if self.options.gpus:
            return self.options.gpus
        try:
            return max(1, int(os.environ.get("NPROC_PER_NODE", "1")) * int(os.environ.get("NNODES", "1")))
        except ValueError:
            return 1
