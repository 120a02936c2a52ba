"""What the checks read, typed and parsed once: the launch, the user's options, the config's settings, and the
facts earlier checks provide (the model's config.json, the samples, the schedule).

``validate_config(path, launch=Launch.from_preset("deepspeed_zero3", gpus=8))`` checks a config for that
launch; ``Launch()`` is the one ``gen`` and ``plan`` print, the tutorial's: ``--deepspeed deepspeed_zero2``
(ZeRO stage 2) on the GPUs this shell would start.

    >>> Launch.from_preset(None).preset, Launch.from_preset("deepspeed_zero3", gpus=8).stage
    (None, 3)
"""

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from xtuner_recipes.validate.checks import Result, check


@dataclass(frozen=True)
class Launch:
    """How training is launched: ``xtuner train --deepspeed PRESET`` on ``gpus`` GPUs over ``nodes`` machines.

    ``preset`` is what xtuner's train script is given (None: no DeepSpeed), ``stage`` and ``offload`` the ZeRO
    stage and the (optimizer states, parameters) CPU offload the memory estimate assumes. ``gpus`` None: the
    launch this shell would start, ``NPROC_PER_NODE`` x ``NNODES`` (read at the call)."""

    preset: str | None = "deepspeed_zero2"
    stage: int = 2
    offload: tuple[bool, bool] = (False, False)
    gpus: int | None = None
    nodes: int = 1

    @classmethod
    def from_preset(cls, preset: str | None, *, gpus: int | None = None, nodes: int = 1) -> "Launch":
        """The launch of ``--deepspeed preset`` (a preset name or a JSON file; None or "none": without
        DeepSpeed), its stage and offload read as xtuner reads the JSON. An unknown preset raises RecipeError."""
        if preset is None or preset == "none":
            return cls(None, 0, (False, False), gpus, nodes)
        from xtuner_recipes.xtuner_info import deepspeed_zero

        stage, *offload = deepspeed_zero(preset)
        return cls(preset, stage, tuple(offload), gpus, nodes)

    def describe(self, environ=None) -> dict:
        """The launch as ``stats.launch`` states it: what the memory and time figures are for."""
        return {"deepspeed": self.preset, "zero_stage": self.stage, "offload": list(self.offload),
                "gpus": self.gpu_count(environ), "nodes": self.nodes}

    def gpu_count(self, environ=None) -> int:
        """GPUs in all: ``gpus``, else ``NPROC_PER_NODE`` x ``NNODES`` from the environment (at the call:
        datasets' ``map(num_proc=…)`` rebinds ``os.environ``)."""
        if self.gpus:
            return self.gpus
        environ = os.environ if environ is None else environ
        try:
            return max(1, int(environ.get("NPROC_PER_NODE", "1")) * int(environ.get("NNODES", "1")))
        except ValueError:
            return 1


# Where xtuner configs name the model they train: the LLM's own setting, else the top-level variable.
MODEL_PATH_KEYS = ("model.llm.pretrained_model_name_or_path", "pretrained_model_name_or_path")


@dataclass(frozen=True)
class Options:
    """What the user asked of the check itself."""

    sample: int | None = None  # map only the first N rows, extrapolate the rest
    strict_env: bool = False  # machine findings are errors
    gpu_mem: float | None = None  # GiB of the card to check the memory estimate against
    gpu: str | None = None  # the card to give the time on (``estimate.cards``): this machine's, else the H200
    host_mem: float | None = None  # GiB of host memory to check training's estimate against
    progress: Callable[[str, int, int | None], None] | None = None


def setting(config, key: str, default=None, *, build: bool = False):
    """The setting at a dotted ``key`` of a loaded config, ``default`` when absent. ``build``: build the lazy
    imports on the way, as training does (a failing import gives ``default``: L002 reports it)."""
    from xtuner_recipes.compat.mmengine import settings

    node = config if build else settings(config)
    for part in key.split("."):
        try:
            if isinstance(node, list | tuple):
                node = node[int(part)]
            else:
                node = node[part] if build else dict.__getitem__(node, part)
        except Exception:  # noqa: BLE001 - absent, or a lazy import failing to build (L002's to report)
            return default
    return default if build and node is None else node


def epoch_based(loop) -> bool:
    """Whether ``train_cfg`` builds mmengine's EpochBasedTrainLoop: named, or ``dict(by_epoch=True, ...)`` as xtuner 0.1.x configs
    write it (xtuner 0.2.0's TrainLoop runs by iterations)."""
    from xtuner_recipes.validate.data.leaves import type_name

    if not isinstance(loop, dict):
        return False
    kind = dict.get(loop, "type")
    return type_name(kind) == "EpochBasedTrainLoop" if kind is not None else dict.get(loop, "by_epoch") is True


@dataclass(frozen=True)
class Settings:
    """The loaded config's settings that the full checks read, each looked up once."""

    model_path: object  # model.llm.pretrained_model_name_or_path, else the top-level one
    max_length: object  # the (first) dataset's max_length, else the top-level one
    template: str | None  # the PROMPT_TEMPLATE the source names
    huggingface: bool  # framework='huggingface': HF's Trainer takes train_dataset
    train_dataset: object  # raw
    train_dataloader: object  # raw
    batch_size: object
    loop: dict  # train_cfg
    checkpoint_hook: object  # default_hooks.checkpoint
    warmup_ratio: object
    evaluation_freq: object
    accumulative_counts: object
    param_scheduler: object  # raw (lazy types unbuilt)
    quantization_config: object  # raw
    lora: object  # raw
    optimizer_type: object  # raw
    activation_checkpointing: object

    @classmethod
    def parse(cls, config, template: str | None) -> "Settings":
        """``config``'s settings; ``template``: the PROMPT_TEMPLATE its source names."""
        def get(key):
            return setting(config, key, build=True)

        def raw(key, default=None):
            return setting(config, key, default)

        from xtuner_recipes.validate.load.config import is_huggingface

        return cls(
            model_path=get(MODEL_PATH_KEYS[0]) or get(MODEL_PATH_KEYS[1]),
            max_length=get("train_dataloader.dataset.max_length") or get("max_length"),
            template=template,
            huggingface=is_huggingface(config),
            train_dataset=raw("train_dataset"), train_dataloader=raw("train_dataloader"),
            batch_size=raw("train_dataloader.batch_size"), loop=raw("train_cfg") or {},
            checkpoint_hook=raw("default_hooks.checkpoint") or {},
            warmup_ratio=get("warmup_ratio") or 0, evaluation_freq=get("evaluation_freq"),
            accumulative_counts=get("optim_wrapper.accumulative_counts") or 1,
            param_scheduler=raw("param_scheduler"), quantization_config=raw("model.llm.quantization_config"),
            lora=raw("model.lora"), optimizer_type=raw("optim_wrapper.optimizer.type"),
            activation_checkpointing=raw("model.use_activation_checkpointing"),
        )

    @property
    def max_epochs(self):
        return dict.get(self.loop, "max_epochs") if isinstance(self.loop, dict) else None

    @property
    def epoch_loop(self) -> bool:
        return epoch_based(self.loop)


@dataclass(frozen=True)
class Samples:
    """What the data check counted: the training samples an epoch and their lengths."""

    count: int | None = None  # after packing (the fewest, when packing after a shuffle varies by run)
    range: tuple[int, int] | None = None  # (fewest, most)
    estimated: bool = False  # from --sample or a max_dataset_length cap: an estimate
    padded: bool = False  # a dataset is not packed: batches vary in length
    longest: int | None = None  # tokens in the longest sample after the cut, when every row was counted
    lengths: object = None  # numpy int32: every kept sample's tokens after the cut, all datasets
    tallies: tuple = ()  # (dataset key, Tally) per counted dataset, for the report


@dataclass(frozen=True)
class Schedule:
    """The run's iterations, as mmengine will count them."""

    iters_per_epoch: int | None = None
    total_iters: int | None = None
    warmup_reported: bool = False  # C001 raised: the schedulers' failure is already said
    estimated: bool = False  # from --sample (or a max_dataset_length cap): an iteration count can't prove a failure
    total_range: tuple[int, int] | None = None  # packing after a shuffle: the fewest and most iterations


@dataclass
class Facts:
    """Everything the checks of one run read and provide, by name (see ``checks.Check``). The HTML report
    draws from it after the run (``validate_config(..., keep=kept)`` leaves it in ``kept["context"]``)."""

    values: dict = field(default_factory=dict)

    def __getattr__(self, name: str):
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None



@check("settings", level="full", reads=("config", "tree", "launch"), provides=("settings", "run"))
def settings_check(config, tree, launch) -> Result:
    """The settings the full checks read, and the run's arithmetic (``estimate.gpu.Run``), parsed once."""
    from xtuner_recipes.config_source import template_name
    from xtuner_recipes.validate.estimate.gpu import Run

    parsed = Settings.parse(config, template_name(tree))
    return Result(stats={"launch": launch.describe()}, provides={"settings": parsed, "run": Run.of(parsed, launch)})
