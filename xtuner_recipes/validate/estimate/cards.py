"""The GPUs a time can be scaled to: each card's dense 16-bit tensor throughput, memory bandwidth and memory.

Throughput is the dense (no sparsity) FP16/BF16 tensor-core figure with FP32 accumulation — what PyTorch's
matmuls use — from NVIDIA's datasheets and architecture whitepapers (the GeForce cards' FP16-accumulate figure
is twice it and is not what training runs at):

- H200: NVIDIA H200 Tensor Core GPU datasheet (SXM: 1,979 TFLOPS FP16 with sparsity, 4.8 TB/s, 141 GB);
- H100: NVIDIA H100 Tensor Core GPU datasheet (SXM: 1,979 with sparsity, 3.35 TB/s, 80 GB; PCIe: 1,513, 2 TB/s);
- A100: NVIDIA A100 datasheet (312 TFLOPS BF16; 80 GB SXM 2,039 GB/s, PCIe 1,935 GB/s; 40 GB 1,555 GB/s);
- L40S: NVIDIA L40S datasheet (362.05 TFLOPS BF16, 864 GB/s, 48 GB);
- A10: NVIDIA A10 datasheet (125 TFLOPS BF16, 600 GB/s, 24 GB);
- L4: NVIDIA L4 datasheet (121 TFLOPS FP16, 300 GB/s, 24 GB);
- RTX 4090: NVIDIA Ada Lovelace architecture whitepaper (82.6 TFLOPS FP16 with FP32 accumulate, 1,008 GB/s, 24 GB);
- RTX 3090: NVIDIA Ampere GA102 whitepaper (35.6 TFLOPS FP16 with FP32 accumulate, 936 GB/s, 24 GB);
- V100: NVIDIA V100 datasheet (SXM2: 125 TFLOPS FP16, 900 GB/s, 16 or 32 GB). No BF16: xtuner's QLoRA configs
  compute in FP16 (``bnb_4bit_compute_dtype=torch.float16``, AMP in FP16) and run there; a config that trains in
  BF16 does not.

``link_gbs`` is one direction of a card's link to the other GPUs of its machine, from the same datasheets: NVLink
for the SXM cards (H100/H200 900 GB/s both ways, A100 600, V100 300), else PCIe x16 (Gen5 64 GB/s a way for the
H100 PCIe, Gen4 32 for the rest; NVLink bridges left out). Between machines ``NETWORK_GBS`` is assumed.

    >>> find("NVIDIA GeForce RTX 4090").memory_gb, find("h100").name, find("Quadro P400")
    (24, 'NVIDIA H100 80GB HBM3', None)
"""

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Card:
    name: str  # as torch.cuda.get_device_name says it
    tflops: float  # dense FP16/BF16 tensor throughput, FP32 accumulate
    bandwidth_gbs: float
    memory_gb: int
    bf16: bool = True
    aliases: tuple[str, ...] = ()
    link_gbs: float = 32.0  # one direction, GPU to GPU within a machine: PCIe Gen4 x16 unless NVLink


CARDS = (
    Card("NVIDIA H200", 989.5, 4800, 141, aliases=("h200",), link_gbs=450),
    Card("NVIDIA H100 80GB HBM3", 989.5, 3350, 80, aliases=("h100", "h100-sxm"), link_gbs=450),
    Card("NVIDIA H100 PCIe", 756.5, 2000, 80, aliases=("h100-pcie",), link_gbs=64),
    Card("NVIDIA A100-SXM4-80GB", 312, 2039, 80, aliases=("a100", "a100-80g", "a100-80gb"), link_gbs=300),
    Card("NVIDIA A100 80GB PCIe", 312, 1935, 80, aliases=("a100-80g-pcie",)),
    Card("NVIDIA A100-SXM4-40GB", 312, 1555, 40, aliases=("a100-40g", "a100-40gb"), link_gbs=300),
    Card("NVIDIA L40S", 362.05, 864, 48, aliases=("l40s",)),
    Card("NVIDIA A10", 125, 600, 24, aliases=("a10",)),
    Card("NVIDIA L4", 121, 300, 24, aliases=("l4",)),
    Card("NVIDIA GeForce RTX 4090", 82.6, 1008, 24, aliases=("rtx4090", "4090")),
    Card("NVIDIA GeForce RTX 3090", 35.6, 936, 24, aliases=("rtx3090", "3090")),
    Card("Tesla V100-SXM2-32GB", 125, 900, 32, bf16=False, aliases=("v100", "v100-32g"), link_gbs=150),
    Card("Tesla V100-SXM2-16GB", 125, 900, 16, bf16=False, aliases=("v100-16g",), link_gbs=150),
)
MEASURED = "NVIDIA H200"  # where the time model's constants were measured
NETWORK_GBS = 12.5  # between machines, one direction: 100 Gb/s Ethernet or InfiniBand (assumed, not measured)


def key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def find(name: str | None) -> Card | None:
    """The card ``name`` names: torch's device name, the table's name or a short alias (``h100``, ``rtx4090``)."""
    if not name:
        return None
    wanted = key(name)
    for card in CARDS:
        if wanted in (key(card.name), *map(key, card.aliases)):
            return card
    return None


def names() -> str:
    return ", ".join(card.aliases[0] for card in CARDS)
