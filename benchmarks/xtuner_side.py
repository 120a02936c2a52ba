"""The xtuner side of the data benchmarks, one job per invocation (run as a child process).

    python benchmarks/xtuner_side.py process CONFIG      # process_hf_dataset over every row, 2 processes
    python benchmarks/xtuner_side.py msagent FILE        # read + msagent_react_map_fn, plain loop
"""

import json
import sys


def process(config: str) -> None:
    from mmengine.config import Config
    from xtuner.registry import BUILDER

    cfg = Config.fromfile(config)
    cfg.train_dataset.map_num_proc = 2
    dataset = BUILDER.build(cfg.train_dataset)
    print(len(dataset))


def msagent(path: str) -> None:
    # xtuner's mapper evals each row's string: only run it on data you made.
    from xtuner.dataset.map_fns import msagent_react_map_fn

    count = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            msagent_react_map_fn(json.loads(line))
            count += 1
    print(count)


if __name__ == "__main__":
    {"process": process, "msagent": msagent}[sys.argv[1]](sys.argv[2])
