"""Figures the notebooks and widgets show (matplotlib, imported only when a plot is made).

Each function takes plain values and returns a ``matplotlib.figure.Figure``; :func:`png` turns
one into PNG bytes for an ``ipywidgets.Image``. Nothing here computes: the numbers come from
:mod:`lessonlib.data` and :mod:`lessonlib.costs`.
"""

from __future__ import annotations

import io
from typing import Any, Sequence


def _figure(width: float = 6.4, height: float = 3.2) -> Any:
    from matplotlib.figure import Figure

    _show_in_notebooks()
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _show_in_notebooks() -> None:
    """Let IPython display our figures as PNG images (it does so for pyplot figures only once the
    inline backend is loaded; ours are plain ``Figure`` objects, which keeps pyplot's state out)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib.figure import Figure

    shell.display_formatter.formatters["image/png"].for_type(Figure, png)


def token_histogram(lengths: Sequence[int], *, context: int | None = None, title: str = "Tokens per example") -> Any:
    """Histogram of example lengths, with the model's training context as a line when it is in view."""
    fig = _figure()
    ax = fig.subplots()
    if lengths:
        ax.hist(list(lengths), bins=min(40, max(5, len(set(lengths)))), color="#4c72b0", edgecolor="white")
        top = max(lengths)
        if context and context <= top * 1.5:
            ax.axvline(context, color="#c44e52", linestyle="--", label=f"training context ({context:,})")
            ax.legend()
    ax.set_title(title)
    ax.set_xlabel("tokens")
    ax.set_ylabel("examples")
    return fig


def break_even_curve(points: Sequence[Any], *, marker: Any | None = None) -> Any:
    """Monthly cost of few-shot prompting and of a fine-tuned model against requests per month.

    ``points`` are :class:`lessonlib.costs.BreakEven` results at increasing volumes; ``marker``
    one of them to highlight (the learner's own volume).
    """
    fig = _figure()
    ax = fig.subplots()
    xs = [p.requests_per_month for p in points]
    ax.plot(xs, [p.few_shot_monthly for p in points], label="few-shot prompting", color="#dd8452")
    ax.plot(xs, [p.fine_tuned_monthly for p in points], label="fine-tuned model", color="#4c72b0")
    crossover = points[0].break_even_requests if points else None
    if crossover is not None and xs and crossover <= xs[-1]:
        ax.axvline(crossover, color="grey", linestyle=":", label=f"break-even ≈ {crossover:,.0f}/month")
    if marker is not None:
        ax.scatter([marker.requests_per_month] * 2, [marker.few_shot_monthly, marker.fine_tuned_monthly], color="black", zorder=3, s=18)
    ax.set_xlabel("requests per month")
    ax.set_ylabel("US dollars per month")
    if points:
        ax.set_title(f"{points[0].price.provider}/{points[0].price.model} — prices of {points[0].price.as_of}", fontsize=10)
    ax.legend()
    return fig


def loss_points(events: Sequence[Any], kind: str = "eval") -> list[tuple[int, float]]:
    """(step, loss) of a run's progress events (objects or their dicts): ``kind`` "eval" gives the
    validation losses, "step" the training losses.

    >>> loss_points([{"kind": "step", "step": 1, "loss": 2.0, "eval_loss": None},
    ...              {"kind": "eval", "step": 1, "loss": None, "eval_loss": 1.5}])
    [(1, 1.5)]
    """
    key = "eval_loss" if kind == "eval" else "loss"

    def get(e: Any, name: str) -> Any:
        return e.get(name) if isinstance(e, dict) else getattr(e, name)

    return [(get(e, "step"), get(e, key)) for e in events if get(e, "kind") == kind and get(e, key) is not None]


def loss_curves(events: Sequence[Any], *, best_step: int | None = None) -> Any:
    """Training and validation loss against the step, from progress events (or their dicts);
    ``best_step`` marks where the validation loss was lowest (the adapter early stopping keeps)."""
    steps, evals = loss_points(events, "step"), loss_points(events, "eval")
    fig = _figure()
    ax = fig.subplots()
    if steps:
        ax.plot([s for s, _ in steps], [v for _, v in steps], label="training loss", color="#4c72b0")
    if evals:
        ax.plot([s for s, _ in evals], [v for _, v in evals], "o-", label="validation loss", color="#dd8452")
    if best_step is not None:
        ax.axvline(best_step, color="grey", linestyle=":", label=f"best validation loss (step {best_step})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Learning curve")
    if steps or evals:
        ax.legend()
    return fig


def data_size_curves(results: Sequence[Any]) -> Any:
    """Validation loss against the step for each run of :func:`lessonlib.limits.data_size_study`."""
    fig = _figure()
    ax = fig.subplots()
    colors = ["#c44e52", "#dd8452", "#55a868", "#4c72b0", "#8172b3"]
    for color, result in zip(colors * 4, results):
        evals = loss_points(result.history, "eval")
        if evals:
            ax.plot([s for s, _ in evals], [v for _, v in evals], "o-", color=color, label=f"{result.examples} examples")
        if result.best_step is not None and result.best_eval_loss is not None:
            ax.scatter([result.best_step], [result.best_eval_loss], s=90, facecolors="none", edgecolors=color, zorder=3)
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss")
    ax.set_title("Same run, more data (circles: the best step of each)", fontsize=10)
    if results:
        ax.legend()
    return fig


def strategy_bars(report: Any) -> Any:
    """The primary score of each strategy of an evaluation report, as bars (skipped ones left out)."""
    ran = [r for r in report.results if not r.skipped]
    fig = _figure(6.4, 3.0)
    ax = fig.subplots()
    colors = {"zero-shot": "#8c8c8c", "few-shot": "#dd8452", "rag": "#55a868", "fine-tuned": "#4c72b0"}
    values = [r.metrics[report.primary_metric] for r in ran]
    intervals = [r.interval() if hasattr(r, "interval") else None for r in ran]
    bars = ax.bar([r.strategy for r in ran], values, color=[colors.get(r.strategy, "#999") for r in ran])
    for bar, value, interval in zip(bars, values, intervals):
        top = value
        if interval:  # the 95% bootstrap interval of the mean, as an error bar
            x = bar.get_x() + bar.get_width() / 2
            ax.errorbar([x], [value], yerr=[[value - interval[0]], [interval[1] - value]], color="#333", capsize=4)
            top = interval[1]
        ax.text(bar.get_x() + bar.get_width() * 0.78, top + 0.01, f"{value:.2f}", ha="center", va="bottom")
    ax.set_ylim(0, 1.15)
    ax.set_ylabel(report.primary_metric.replace("_", " "))
    shown = " (bars: 95% bootstrap intervals)" if any(intervals) else ""
    ax.set_title(f"{report.task}: {ran[0].n if ran else 0} held-out examples, local model{shown}", fontsize=10)
    return fig


def png(fig: Any) -> bytes:
    """PNG bytes of a figure (for ``ipywidgets.Image``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
