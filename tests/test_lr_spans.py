"""lr_spans (the schedulers' begin/end without importing mmengine.optim) against mmengine's own Runner
building the same schedules: wherever lr_spans answers, mmengine accepts the schedule and agrees."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtuner_recipes.validate.schedule import lr as lr_schedule, lr_spans
from xtuner_recipes.compat.mmengine import settings as loaded_settings

NAMES = ("LinearLR", "CosineAnnealingLR", "ConstantLR") * 3 + ("MultiStepLR",)  # the last is never answered
FACTOR = st.floats(0, 1) | st.sampled_from([0, 1, 1e-5]) | st.floats(-0.5, 1.5)  # mostly in mmengine's range
EXTRA = {
    "LinearLR": {"start_factor": FACTOR, "end_factor": FACTOR},
    "CosineAnnealingLR": {"T_max": st.none() | st.integers(-2, 50), "eta_min": st.none() | st.floats(-1, 1),
                          "eta_min_ratio": st.none() | st.floats(0, 1)},
    "ConstantLR": {"factor": FACTOR},
    "MultiStepLR": {"milestones": st.just([1, 2])},
}
BOUND = st.sampled_from([0, 0.03, 0.09, 1, 3, int(1e9)]) | st.integers(-1, 12) | st.floats(0, 4)


@st.composite
def scheduler(draw):
    name = draw(st.sampled_from(NAMES))
    entry = {"type": name}
    for key, values in {**EXTRA[name], "begin": BOUND, "end": BOUND, "by_epoch": st.booleans(),
                        "convert_to_iter_based": st.booleans(), "verbose": st.just(False)}.items():
        if draw(st.integers(0, 2)) == 0:  # each argument given in a third of the schedulers
            entry[key] = draw(values)
    return entry


def _forms(entries, lazy: bool):
    """The schedules as mmengine's Runner gets them (classes) and as validate reads the raw config
    (lazy imports, or the classes when the config imported them for real)."""
    import mmengine.optim
    from mmengine.config.lazy import LazyObject

    built = [{**e, "type": getattr(mmengine.optim, e["type"])} for e in entries]
    raw = [{**e, "type": LazyObject("mmengine.optim", e["type"]) if lazy else getattr(mmengine.optim, e["type"])}
           for e in entries]
    return built, raw


@settings(max_examples=400, deadline=None)
@given(entries=st.lists(scheduler(), min_size=1, max_size=3), lazy=st.booleans(),
       iters_per_epoch=st.integers(1, 300), max_epochs=st.integers(1, 5) | st.sampled_from([0.5, 2.0]),
       epoch_loop=st.booleans())
def test_where_lr_spans_answers_mmengine_builds_the_same_spans(entries, lazy, iters_per_epoch, max_epochs, epoch_loop):
    built, raw = _forms(entries, lazy)
    shape = dict(iters_per_epoch=iters_per_epoch, max_epochs=max_epochs, epoch_loop=epoch_loop)
    fast = lr_spans.spans(raw, **shape)
    if fast is None:
        return
    schedulers = lr_schedule.build(copy.deepcopy(built), **shape)  # raises if mmengine refuses: the test fails
    assert [(s.begin, s.end, s.by_epoch) for s in schedulers] == [tuple(s) for s in fast]


def test_lr_spans_answers_for_the_schedules_xtuner_configs_use():
    """The shipped configs' warmup + cosine (and a constant one) are answered, not passed to mmengine."""
    common = dict(by_epoch=True, convert_to_iter_based=True)
    entries = [dict(type="LinearLR", start_factor=1e-5, begin=0, end=0.09, **common),
               dict(type="CosineAnnealingLR", eta_min=0.0, begin=0.09, end=3, **common)]
    for lazy in (True, False):
        built, raw = _forms(entries, lazy)
        fast = lr_spans.spans(raw, iters_per_epoch=50, max_epochs=3, epoch_loop=False)
        assert fast is not None
        assert [tuple(s) for s in fast] == [(s.begin, s.end, s.by_epoch) for s in lr_schedule.build(
            built, iters_per_epoch=50, max_epochs=3, epoch_loop=False)] == [(0, 4, False), (4, 150, False)]
    assert lr_spans.spans(_forms([dict(type="ConstantLR", factor=1.0)], True)[1], iters_per_epoch=5, max_epochs=2,
                          epoch_loop=True) == [(0, 2, True)]


def test_lr_spans_leaves_to_mmengine_what_it_refuses_or_does_not_know():
    _, raw = _forms([dict(type="CosineAnnealingLR", begin=4, end=3, by_epoch=True, convert_to_iter_based=True)], True)
    assert lr_spans.spans(raw, iters_per_epoch=10, max_epochs=3, epoch_loop=False) is None  # mmengine: end <= begin
    _, raw = _forms([dict(type="MultiStepLR", milestones=[1])], True)
    assert lr_spans.spans(raw, iters_per_epoch=10, max_epochs=3, epoch_loop=False) is None
    _, raw = _forms([dict(type="LinearLR", start_factor=2.0)], True)
    assert lr_spans.spans(raw, iters_per_epoch=10, max_epochs=3, epoch_loop=False) is None
    assert lr_spans.spans([dict(type="LinearLR")], iters_per_epoch=10, max_epochs=3, epoch_loop=False) is None


@pytest.mark.slow
def test_every_shipped_schedule_is_answered_and_equals_mmengines(shipped_loaded):
    """xtuner's own configs: lr_spans answers every schedule they define, as mmengine builds it."""
    from xtuner_recipes.validate.inputs import setting
    from xtuner_recipes.validate.inputs import epoch_based

    compared, refused, unanswered = 0, 0, []
    for path, config in shipped_loaded.items():
        if isinstance(config, Exception):  # a config mmengine can't load (L001's business) has no schedule to read
            continue
        raw, loop = dict.get(loaded_settings(config), "param_scheduler"), dict.get(loaded_settings(config), "train_cfg") or {}
        max_epochs = dict.get(loop, "max_epochs")
        if not raw or not isinstance(max_epochs, int | float):
            continue
        for iters_per_epoch in (1, 37):  # one iteration an epoch: a warmup of int(0.09) = 0 iterations
            shape = dict(iters_per_epoch=iters_per_epoch, max_epochs=max_epochs, epoch_loop=epoch_based(loop))
            fast = lr_spans.spans(raw, **shape)
            try:
                built = lr_schedule.build(setting(config, "param_scheduler", build=True), **shape)
            except ValueError as error:
                assert fast is None and "end should be larger than begin" in str(error), path.name
                refused += 1
                continue
            if fast is None:
                unanswered.append(path.name)
                continue
            assert [tuple(s) for s in fast] == [(s.begin, s.end, s.by_epoch) for s in built], path.name
            compared += 1
    assert compared >= 550 and refused >= 1 and not unanswered, (compared, refused, unanswered[:10])
