"""What each section of the HTML report shows, gathered from one ``validate`` run's facts.

Nothing here re-derives xtuner: the learning rate comes from mmengine's own scheduler objects
stepped as its ``ParamSchedulerHook`` steps them; the samples are the ones the data check
rendered through the config's template and counted with its tokenizer.
"""

from dataclasses import dataclass

MAX_DRAWN_ITERS = 300_000  # stepping the schedulers costs ~20 µs an iteration


@dataclass(frozen=True)
class Segment:
    text: str
    kind: str  # bos, input, output, eos, sep
    trained: bool
    start: int  # its first token's position in the sample
    tokens: int

    def cut(self, max_length: int) -> bool:
        """Past ``max_length``: xtuner drops it."""
        return self.start >= max_length

    def kept(self, max_length: int) -> int:
        """Its tokens before ``max_length``: all, none (``cut``), or the first few when the cut falls inside it."""
        return max(0, min(self.start + self.tokens, max_length) - self.start)

    def crosses(self, max_length: int) -> bool:
        """The cut falls inside it: xtuner keeps (and, for an output, trains) only its first ``kept`` tokens."""
        return 0 < self.kept(max_length) < self.tokens


def source_lines(source: str, line: int | None, around: int = 2) -> list[tuple[int, str]]:
    """The config's lines ``line - around .. line + around``, numbered from 1.

        >>> source_lines("a\\nb\\nc\\nd", 2, around=1)
        [(1, 'a'), (2, 'b'), (3, 'c')]
    """
    if not line:
        return []
    lines = source.splitlines()
    return [(n, lines[n - 1]) for n in range(max(1, line - around), min(len(lines), line + around) + 1)]


def example_segments(turns: list[dict], shaped: list, *, bos: int, eos: int | None) -> list[Segment]:
    """One sample as xtuner encodes it (``tokens.layout.layout``'s order): bos before a turn that follows
    an eos, the input, the output and its eos (trained unless ``output_with_loss`` is false), the
    separator. ``tests/test_report.py`` holds the positions to ``tokens.layout.layout``."""
    segments, position, needs_bos = [], 0, True

    def add(text, kind, tokens, trained):
        nonlocal position
        if tokens or text:
            segments.append(Segment(text, kind, trained, position, tokens))
        position += tokens

    for turn, counts in zip(turns, shaped):
        if needs_bos and bos:
            add("<bos>", "bos", bos, False)
        add(turn["input"], "input", counts.input, False)
        add(turn["output"], "output", counts.output, counts.loss)
        if counts.eos and eos:
            add("<eos>", "eos", eos, counts.loss)
        if counts.sep:
            add(turn.get("sep", ""), "sep", counts.sep, False)
        needs_bos = counts.eos
    return segments


def learning_rates(config, settings, schedule) -> tuple[list[float], str | None]:
    """The learning rate of every iteration, or ([], why not drawn)."""
    from xtuner_recipes.validate.inputs import setting
    from xtuner_recipes.validate.schedule import lr as lr_schedule

    total = schedule.total_iters if schedule is not None else None
    per_epoch = schedule.iters_per_epoch if schedule is not None else None
    schedulers = setting(config, "param_scheduler", build=True)
    lr = setting(config, "optim_wrapper.optimizer.lr", build=True)
    if not total or not per_epoch or not schedulers or not isinstance(lr, int | float):
        return [], "the schedule needs the data's sample count and a param_scheduler"
    if total > MAX_DRAWN_ITERS:
        return [], f"{total} iterations: more than {MAX_DRAWN_ITERS} are not drawn"
    epoch_loop = settings.epoch_loop
    try:
        built = lr_schedule.build(schedulers, iters_per_epoch=per_epoch, max_epochs=settings.max_epochs,
                                  epoch_loop=epoch_loop, lr=float(lr))
    except Exception as error:  # noqa: BLE001 - mmengine refusing it: C006 reports it
        return [], f"mmengine refuses the schedule ({type(error).__name__})"
    group = built[0].optimizer.param_groups[0] if built else None
    if group is None:
        return [], "no scheduler was built"
    import types
    import warnings

    from mmengine.hooks import ParamSchedulerHook

    # mmengine's own hook steps them, as in training: after every iteration, and after every epoch
    # of an epoch-based loop (an iteration loop ends no epoch).
    hook, runner = ParamSchedulerHook(), types.SimpleNamespace(param_schedulers=built)
    rates = []
    with warnings.catch_warnings():  # the probe optimizer never steps: torch's order warning is moot
        warnings.filterwarnings("ignore", message="Detected call of `scheduler.step", category=UserWarning)
        for iteration in range(total):
            rates.append(group["lr"])
            hook.after_train_iter(runner, iteration)
            if epoch_loop and (iteration + 1) % per_epoch == 0:
                hook.after_train_epoch(runner)
    return rates, None


def marks(config, settings, schedule) -> tuple[list[int], list[int]]:
    """Iterations where CheckpointHook saves and where the chat evaluation hook runs."""
    from xtuner_recipes.validate.inputs import setting

    total = (schedule.total_iters if schedule is not None else None) or 0
    per_epoch = (schedule.iters_per_epoch if schedule is not None else None) or 1
    from xtuner_recipes.validate.estimate.wholerun import saves

    checkpoint = setting(config, "default_hooks.checkpoint", build=True) or {}
    evaluations = _evaluations(setting(config, "custom_hooks", build=True) or [], total)
    return saves(checkpoint, total, per_epoch=per_epoch, epoch_loop=settings.epoch_loop), evaluations


def _evaluations(hooks, total: int) -> list[int]:
    for hook in hooks:
        every = dict.get(hook, "every_n_iters") if isinstance(hook, dict) else None
        if isinstance(hook, dict) and "evaluation_inputs" in hook and isinstance(every, int) and every > 0:
            return [0, *range(every, total + 1, every)]  # EvaluateChatHook also runs before training
    return []
