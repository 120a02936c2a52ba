"""Findings are values: each check yields them, a reporter renders them.

    >>> Finding("S003", "error", "lr: -1 is less than the minimum of 0", key="lr", line=12).as_dict()["line"]
    12
"""

from dataclasses import asdict, dataclass, field

SEVERITIES = ("error", "warning", "info")

# For these codes `line` is a line of the data file (named in the message), not of the config.
DATA_ROW_CODES = frozenset({"D002", "D003"})

# Every code, its family (by prefix) and what it means. Codes are never reused.
CODES = {
    "S001": "the config is not valid Python",
    "S002": "a name is used but never defined",
    "S003": "a setting has the wrong type or range for the component that consumes it",
    "S004": "the prompt template is not one xtuner defines",
    "L001": "mmengine cannot load the config",
    "L002": "an imported name cannot be resolved",
    "L003": "xtuner train stops before the model loads (its own check_cfg rules, or a missing train_dataloader/model)",
    "L004": "the Runner cannot print the config (a value that is no literal, import or registered function)",
    "M001": "the model directory does not exist",
    "M002": "the model is a hub id and will be downloaded",
    "M003": "the model directory has no config.json",
    "M004": "the model directory has no tokenizer files",
    "M005": "max_length exceeds the model's max_position_embeddings (an error where positions are a learned table)",
    "M006": "the prompt template is not the one the model's type usually chats with (a guess: a warning)",
    "M007": "a base (non-chat) model with a chat template",
    "M008": "the prompt template disagrees with the model's own chat template (tokenizer_config.json)",
    "D001": "the data path does not exist",
    "D002": "a data row cannot be read (bad JSON, encoding, not an object)",
    "D003": "the config's map function fails on a data row",
    "D004": "data rows map to an empty conversation",
    "D005": "no usable data rows",
    "D006": "a dataset's data was not checked (a hub id with no local copy, a builder this tool does not read)",
    "D007": "load_dataset is given a file as path (the datasets library fails on it)",
    "D008": "a dataset's map function names nothing xtuner can find, or did not import",
    "D009": "the map function eval()s the data rows (xtuner's msagent_react_map_fn): checked without evaluating",
    "D010": "a data path is not a regular file: a FIFO or device is not read (a warning); a folder in data_files fails",
    "D011": "a JSON field is text in some rows and a number in others: datasets 3.2 (xtuner's pin) fails to build it",
    "T001": "samples are cut at max_length",
    "T002": "the model directory's tokenizer fails to load, or fails on the data",
    "T003": "samples keep no output token within max_length (xtuner drops them)",
    "T004": "a dataset's tokens were not counted (its template did not resolve)",
    "T005": "the tokenizer lacks the bos/eos token xtuner's encode_fn adds to every sample",
    "C001": "the warmup lasts zero iterations (mmengine: end should be larger than begin)",
    "C002": "save_steps is larger than the whole run: only the final checkpoint is written",
    "C003": "evaluation_freq is larger than the whole run: no chat sample is logged",
    "C004": "iterations not computed: the number of training samples is unknown here",
    "C005": "batch_size or max_epochs is no positive number: the run has no iterations or the sampler refuses it",
    "C006": "mmengine refuses to build param_scheduler for this run",
    "C007": "param_scheduler leaves iterations uncovered (the LR stays fixed), or a scheduler never steps",
    "G001": "the estimated peak GPU memory exceeds the card (error), or leaves less than the estimate's margin (warning)",
    "G002": "the data fits the card, but a batch of max_length tokens would not",
    "G003": "unpacked batches change shape every step: without expandable segments PyTorch's allocator fragments",
    "G004": "training's estimated host memory (peak RSS) exceeds this machine's or --host-mem",
    "E001": "no CUDA GPU on this machine",
    "E002": "bitsandbytes fails to import (QLoRA and LoRA training need it)",
    "E003": "deepspeed is not installed, or fails to import",
    "E004": "mpi4py is not installed (deepspeed's multi-node runs need it)",
    "E005": "the config needs a package this machine lacks (flash-attn for varlen attention or sequence parallel)",
    "E006": "torch or torchvision fails to import, or torchvision's compiled ops don't match torch",
    "E007": "xtuner's train script fails to import",
    "E008": "the installed xtuner is XTuner V1, which has no LoRA/QLoRA",
    "E009": "`xtuner chat --lagent` can't start: lagent fails to import, or SERPER_API_KEY is unset",
    "E010": "a multi-node launch without PORT, ADDR or NODE_RANK: xtuner picks a random port per node (a hang)",
    "E011": "a package's version differs from xtuner's own pin (may work: a warning)",
    "E012": "the training stack could not be probed (the probe process died or hung)",
}


@dataclass(frozen=True)
class Finding:
    """One problem (or note) about one config."""

    code: str
    severity: str
    message: str
    key: str | None = None
    line: int | None = None
    hint: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ConfigReport:
    """Everything one ``validate`` run found about one config."""

    config: str
    findings: list[Finding] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    internal_error: str | None = None  # a bug of this tool's that ended the run early
    skipped: list[str] = field(default_factory=list)  # checks not run because one they need failed
    machine: dict | None = None  # this machine's verdict (doctor's): {"ok", "problems": [{code, message, fix}]}

    @property
    def ok(self) -> bool:
        return self.internal_error is None and not any(f.severity == "error" for f in self.findings)

    def as_dict(self) -> dict:
        return {
            "config": self.config,
            "ok": self.ok,
            "findings": [f.as_dict() for f in self.findings],
            "stats": self.stats,
            "internal_error": self.internal_error,
            "skipped": self.skipped,
            "machine": self.machine,
        }
