"""Find the datasets a config trains on by following ``train_dataloader.dataset`` the way it is built.

xtuner builds whatever ``train_dataloader.dataset`` holds: a ``process_hf_dataset`` dict, a
``ConcatDataset`` of several (the alpaca configs), a LLaVA dataset… The name the config gives
it (``train_dataset``, ``alpaca_en``) does not matter, so the walk reads the loaded config, not
variable names. Each *leaf* is one dataset whose rows this tool can read and map.

    >>> [leaf.key for leaf in find({"dataset": {"type": "ConcatDataset", "datasets": [
    ...     {"type": "process_hf_dataset", "dataset": {"path": "json"}},
    ...     {"type": "LLaVADataset"}]}}, prefix="train_dataloader")[0]]
    ['train_dataloader.dataset.datasets.0']
"""

from dataclasses import dataclass

# Builders whose `dataset` is a `load_dataset`-style dict and whose rows go through a map function.
MAPPED = frozenset({"process_hf_dataset", "process_ms_dataset"})
CONCAT = frozenset({"ConcatDataset"})
# Known builders whose data this tool does not read, and why, in plain words.
NOT_READ = {
    "build_preference_dataset": "it is preference data (DPO/ORPO/reward pairs); this tool checks supervised "
                                "fine-tuning data",
}


@dataclass(frozen=True)
class Leaf:
    key: str  # dotted path from the top of the config: train_dataloader.dataset.datasets.1
    builder: str  # process_hf_dataset, ...
    node: dict  # the raw config dict (lazy values not built)

    def get(self, name, default=None):
        return dict.get(self.node, name, default)

    def setting(self, name):
        """What xtuner uses for ``name``: the config's value, else the builder's default
        (``pack_to_max_length=True``, ``map_num_proc=32``, read from xtuner's source)."""
        from xtuner_recipes.xtuner_info import builder_defaults

        return dict.get(self.node, name) if name in self.node else builder_defaults().get(name)


@dataclass(frozen=True)
class Unread:
    key: str
    why: str


def qualified(value) -> str | None:
    """A config ``type`` as written: ``load_dataset``, ``MsDataset.load`` (a lazy import or
    attribute, a dotted string, a class or a function), without building it."""
    from xtuner_recipes.compat.mmengine import is_lazy, lazy_import

    if is_lazy(value) and type(value).__name__ == "LazyAttr":
        return f"{qualified(value.source)}.{value.name}"
    if is_lazy(value):
        return lazy_import(value)[1] or str(value)
    if isinstance(value, str):
        return value
    return getattr(value, "__qualname__", None) or getattr(value, "__name__", None)


def type_name(value) -> str | None:
    """The last dotted part of a config ``type``."""
    name = qualified(value)
    return name.rsplit(".", 1)[-1] if name else None


def find(dataloader, *, prefix: str = "train_dataloader") -> tuple[list[Leaf], list[Unread]]:
    """The leaves under ``dataloader['dataset']`` and the parts whose data can't be read here."""
    leaves: list[Leaf] = []
    unread: list[Unread] = []
    if not isinstance(dataloader, dict) or dict.get(dataloader, "dataset") is None:
        return leaves, [Unread(prefix, "it has no dataset")]
    _walk(dict.get(dataloader, "dataset"), f"{prefix}.dataset", leaves, unread)
    return leaves, unread


def _walk(node, key: str, leaves: list[Leaf], unread: list[Unread]) -> None:
    if isinstance(node, list | tuple):
        for index, item in enumerate(node):
            _walk(item, f"{key}.{index}", leaves, unread)
        return
    if not isinstance(node, dict):
        unread.append(Unread(key, f"it is a {type(node).__name__}, not a dataset config"))
        return
    name = type_name(dict.get(node, "type"))
    if name in CONCAT:
        _walk(dict.get(node, "datasets", []), f"{key}.datasets", leaves, unread)
    elif name in MAPPED:
        leaves.append(Leaf(key, name, node))
    elif name in NOT_READ:
        unread.append(Unread(key, NOT_READ[name]))
    else:
        unread.append(Unread(key, f"it is built by {name or 'an unnamed type'}, whose data this tool does not read "
                                  f"(it reads {', '.join(sorted(MAPPED))})"))
