"""The report's charts, drawn by matplotlib into inline SVG (no pyplot, no global backend).

Each function returns one ``<svg>`` element as text, ready to sit in the HTML.

    >>> memory_svg({"weights": 3.6, "activation_checkpoints": 1.0}, 4.9, cards=(8, 16)).startswith("<svg")
    True
"""

import io

from xtuner_recipes.validate.estimate.gpu import fit_verdict

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974",
           "#64B5CD")


def _figure(width: float, height: float, *, bottom: float = 0.17, left: float = 0.07, wspace: float = 0.2):
    """A figure with fixed margins (inches of room for labels, as fractions): matplotlib's constrained layout
    draws every chart twice, which made the report's charts half of its time."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=96)
    figure.subplots_adjust(left=left, right=0.985, bottom=bottom, top=0.9, wspace=wspace)
    return figure


def _svg(figure) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "xtuner-recipes"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # the XML prologue and doctype don't belong inside HTML


def memory_svg(parts: dict, peak: float, *, cards: tuple) -> str:
    """The estimate's parts as one stacked bar, the peak, and each common card's memory as a line."""
    figure = _figure(8.5, 3.1, bottom=0.33, left=0.02)
    axes = figure.subplots()
    left = 0.0
    for index, (name, value) in enumerate(sorted(parts.items(), key=lambda item: -item[1])):
        axes.barh(0, value, left=left, color=PALETTE[index % len(PALETTE)], label=f"{name} {value:.1f}")
        left += value
    axes.axvline(peak, color="black", linewidth=1.5)
    axes.text(peak, 0.55, f" peak {peak:.1f} GiB", va="bottom", fontsize=9, fontweight="bold")
    shown = [card for card in cards if card <= max(peak * 1.6, cards[0])]
    for card in shown:
        verdict = fit_verdict(peak, card)[0]
        colour, word = {"fits": ("#2a9d3f", "fits"), "tight": ("#b7791f", "tight")}.get(verdict, ("#c0392b", "no"))
        axes.axvline(card, color=colour, linestyle="--", linewidth=1)
        axes.text(card, -0.62, f"{card} GB {word}", rotation=0, ha="center", va="top", fontsize=8, color=colour)
    axes.set_xlim(0, max([peak * 1.08, *shown]) * 1.04)
    axes.set_ylim(-1, 1)
    axes.set_yticks([])
    axes.set_xlabel("GiB per GPU")
    figure.legend(loc="lower center", ncol=4, fontsize=8, frameon=False)
    return _svg(figure)


def run_svg(parts: dict, at: dict | None = None) -> str:
    """The whole run's parts as one stacked bar of minutes (each part at ``at``, the answer inside its range; the
    middle without it), the range's ends marked."""
    figure = _figure(8.5, 1.9, bottom=0.45, left=0.02)
    axes = figure.subplots()
    left = 0.0
    for index, (name, (low, high)) in enumerate(parts.items()):
        minutes = ((at or {}).get(name, (low + high) / 2)) / 60
        axes.barh(0, minutes, left=left, color=PALETTE[index % len(PALETTE)], label=f"{name} {minutes:.1f}")
        left += minutes
    low, high = (sum(ends[i] for ends in parts.values()) / 60 for i in (0, 1))
    axes.errorbar([left], [0], xerr=[[max(0.0, left - low)], [max(0.0, high - left)]], color="black", capsize=4,
                  linewidth=1)
    axes.set_xlim(0, max(high, left) * 1.05 or 1)
    axes.set_ylim(-0.6, 0.6)
    axes.set_yticks([])
    axes.set_xlabel("minutes")
    figure.legend(loc="lower center", ncol=4, fontsize=8, frameon=False)
    return _svg(figure)


def lengths_svg(full, kept, labelled, *, max_length: int) -> str:
    """Left: every sample's tokens before the cut, with max_length and the share cut. Right: after the
    cut, the input (not trained) and output (trained) tokens of each sample kept."""
    import numpy as np

    full, kept, labelled = (np.asarray(a) for a in (full, kept, labelled))
    figure = _figure(8.5, 3.0)
    before, parts = figure.subplots(1, 2)
    bins = np.linspace(0, max(int(full.max()), max_length) * 1.02, 40)
    before.hist(full, bins=bins, color=PALETTE[0], histtype="stepfilled")  # one patch, not one a bin: half the time
    before.axvline(max_length, color="#c0392b", linestyle="--")
    cut = float((full > max_length).mean()) if len(full) else 0.0
    before.set_title(f"tokens a sample, before the cut: {cut:.1%} longer than max_length {max_length}", fontsize=9)
    before.set_xlabel("tokens")
    before.set_ylabel("samples")
    if len(kept):
        top = max(int(kept.max()), 1)
        edges = np.linspace(0, top * 1.02, 40)
        parts.hist(kept - labelled, bins=edges, histtype="step", linewidth=1.6, color=PALETTE[1], label="input (no loss)")
        parts.hist(labelled, bins=edges, histtype="step", linewidth=1.6, color=PALETTE[2], label="output (trained)")
        parts.legend(fontsize=8, frameon=False)
    parts.set_title(f"after the cut: {len(kept)} samples kept", fontsize=9)
    parts.set_xlabel("tokens")
    return _svg(figure)


def schedule_svg(lrs, *, warmup: int | None, checkpoints: list[int], evaluations: list[int]) -> str:
    """The learning rate at every iteration, with the warmup's end, checkpoints and evaluations marked."""
    figure = _figure(8.5, 2.8, left=0.09)
    axes = figure.subplots()
    axes.plot(range(len(lrs)), lrs, color=PALETTE[0], linewidth=1.6, label="learning rate")
    if warmup:
        axes.axvline(warmup, color=PALETTE[1], linestyle="--", linewidth=1, label=f"warmup ends ({warmup})")
    top = max(lrs) if len(lrs) else 1.0
    if checkpoints:
        axes.plot(checkpoints, [top * 1.04] * len(checkpoints), "v", color=PALETTE[2], markersize=6,
                  label=f"checkpoint ({len(checkpoints)})")
    if evaluations:
        axes.plot(evaluations, [top * 1.1] * len(evaluations), "o", color=PALETTE[4], markersize=4,
                  label=f"evaluation ({len(evaluations)})")
    axes.set_ylim(0, top * 1.18)
    axes.set_xlabel("iteration")
    axes.set_ylabel("lr")
    axes.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    axes.legend(fontsize=8, frameon=False, loc="lower left")
    return _svg(figure)
