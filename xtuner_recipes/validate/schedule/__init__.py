"""C: iterations, warmup and checkpoints as mmengine counts them, and the LR schedule it builds."""
