"""G: peak GPU memory (plain, under DeepSpeed ZeRO), host memory, and training time, from the model's shape and the run."""
