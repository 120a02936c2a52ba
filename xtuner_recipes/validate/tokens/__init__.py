"""T: tokens as xtuner lays them out (template, bos/eos, the cut), counted with the model's tokenizer; packing."""
