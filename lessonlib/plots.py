"""Charts the notebooks and widgets show: plain data here, drawn by matplotlib in one shared process.

Each chart function takes results (an evaluation report, progress events, break-even points) and
returns a :class:`Chart`: its kind and its values as plain data (JSON). A notebook shows a chart as a
PNG image; :func:`png` gives its bytes (for an ``ipywidgets.Image``) and ``chart.figure()`` the
``matplotlib.figure.Figure``, to change or save. Nothing here computes: the numbers come from
:mod:`lessonlib.data`, :mod:`lessonlib.costs`, :mod:`lessonlib.evaluate` and the runs' events.

Where charts are drawn. matplotlib, with numpy and Pillow, adds about 40 MB to a process that
imports it, and on Binder JupyterLab and every kernel a learner leaves open share 2 GB. So a notebook
kernel sends the chart to the local service, which serves every notebook's replies already (started
if needed), and gets the PNG back; anything else (a script, the command line, a test) draws here.
``LESSONLIB_PLOTS`` chooses: ``service``, ``here`` or ``auto`` (the default). The image is the same
either way: both run :func:`draw`.

>>> chart = learning_curve([(1, 2.0), (2, 1.5)], [(2, 1.7)])
>>> chart
<Chart learning_curve: Learning curve>
>>> png(chart, where="here")[:4]
b'\\x89PNG'
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import local_service
from .i18n import _

#: Colors of the strategies and of the runs, the same in every chart.
STRATEGY_COLORS = {"zero-shot": "#8c8c8c", "few-shot": "#dd8452", "rag": "#55a868", "fine-tuned": "#4c72b0"}
RUN_COLORS = ["#c44e52", "#dd8452", "#55a868", "#4c72b0", "#8172b3"]


@dataclass(frozen=True)
class Chart:
    """A chart as plain data: ``kind`` names its drawing function, ``data`` holds its values (JSON types)."""

    kind: str  # a key of DRAWERS
    data: dict[str, Any] = field(repr=False)  # the values and labels the drawing function reads

    def figure(self) -> Any:
        """The chart drawn here, as a ``matplotlib.figure.Figure``."""
        return draw(self.kind, self.data)

    def _repr_png_(self) -> bytes:  # how Jupyter shows a chart
        return png(self)

    def __repr__(self) -> str:
        return f"<Chart {self.kind}: {self.data.get('title', '')}>"


# --------------------------------------------------------------------------------------------
# Charts (plain data)
# --------------------------------------------------------------------------------------------


def token_histogram(lengths: Sequence[int], *, context: int | None = None, title: str | None = None) -> Chart:
    """Histogram of example lengths, with the model's training context as a line when it is in view."""
    return Chart("token_histogram", {"lengths": [int(n) for n in lengths], "context": context,
                                     "title": title or _("Tokens per example")})


def break_even_curve(points: Sequence[Any], *, marker: Any | None = None) -> Chart:
    """Monthly cost of few-shot prompting and of a fine-tuned model against requests per month.

    ``points`` are :class:`lessonlib.costs.BreakEven` results at increasing volumes; ``marker``
    one of them to highlight (the learner's own volume).
    """
    first = points[0] if points else None
    return Chart("break_even_curve", {
        "requests": [p.requests_per_month for p in points],
        "few_shot": [p.few_shot_monthly for p in points],
        "fine_tuned": [p.fine_tuned_monthly for p in points],
        "break_even": first.break_even_requests if first else None,
        "marker": [marker.requests_per_month, marker.few_shot_monthly, marker.fine_tuned_monthly] if marker else None,
        "title": _("{provider}/{model} — prices of {as_of}").format(provider=first.price.provider, model=first.price.model,
                                                                     as_of=first.price.as_of) if first else "",
    })


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


def learning_curve(train: Sequence[tuple[int, float]], valid: Sequence[tuple[int, float]] = (), *,
                   best_step: int | None = None, title: str | None = None) -> Chart:
    """Training and validation loss against the step, from (step, loss) pairs; ``best_step`` marks
    where the validation loss was lowest (the adapter early stopping keeps)."""
    return Chart("learning_curve", {"train": [list(p) for p in train], "valid": [list(p) for p in valid],
                                    "best_step": best_step, "title": title or _("Learning curve")})


def loss_curves(events: Sequence[Any], *, best_step: int | None = None) -> Chart:
    """:func:`learning_curve` of a run's progress events (or their dicts)."""
    return learning_curve(loss_points(events, "step"), loss_points(events, "eval"), best_step=best_step)


def data_size_curves(results: Sequence[Any]) -> Chart:
    """Validation loss against the step for each run of :func:`lessonlib.limits.data_size_study`."""
    runs = [{"examples": r.examples, "valid": [list(p) for p in loss_points(r.history, "eval")],
             "best": [r.best_step, r.best_eval_loss] if r.best_step is not None and r.best_eval_loss is not None else None}
            for r in results]
    return Chart("data_size_curves", {"runs": runs, "title": _("Same run, more data (circles: the best step of each)")})


def strategy_bars(report: Any) -> Chart:
    """The primary score of each strategy of an evaluation report, as bars (skipped ones left out),
    with the 95% bootstrap interval of each mean where the report has one."""
    ran = [r for r in report.results if not r.skipped]
    intervals = [r.interval() if hasattr(r, "interval") else None for r in ran]
    shown = _(" (bars: 95% bootstrap intervals)") if any(intervals) else ""
    return Chart("strategy_bars", {
        "strategies": [r.strategy for r in ran],
        "values": [r.metrics[report.primary_metric] for r in ran],
        "intervals": [list(i) if i else None for i in intervals],
        "ylabel": report.primary_metric.replace("_", " "),
        "title": _("{task}: {n} held-out examples, local model{shown}").format(task=report.task, n=ran[0].n if ran else 0, shown=shown),
    })


# --------------------------------------------------------------------------------------------
# Drawing (matplotlib, imported on the first chart drawn in this process)
# --------------------------------------------------------------------------------------------


def _figure(width: float = 6.4, height: float = 3.2) -> Any:
    from matplotlib.figure import Figure  # a plain Figure: no pyplot state, no GUI backend

    _show_in_notebooks(Figure)
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _show_in_notebooks(figure_class: type) -> None:
    """Let IPython show ``chart.figure()`` as a PNG image (it does so for pyplot's figures only once
    pyplot's inline backend is loaded; ours are plain ``Figure`` objects)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(figure_class, figure_png)


def _draw_token_histogram(d: dict[str, Any]) -> Any:
    fig = _figure()
    ax = fig.subplots()
    lengths, context = d["lengths"], d.get("context")
    if lengths:
        ax.hist(lengths, bins=min(40, max(5, len(set(lengths)))), color="#4c72b0", edgecolor="white")
        if context and context <= max(lengths) * 1.5:
            ax.axvline(context, color="#c44e52", linestyle="--", label=_("training context ({context:,})").format(context=context))
            ax.legend()
    ax.set_title(d["title"])
    ax.set_xlabel(_("tokens"))
    ax.set_ylabel(_("examples"))
    return fig


def _draw_break_even_curve(d: dict[str, Any]) -> Any:
    fig = _figure()
    ax = fig.subplots()
    xs = d["requests"]
    ax.plot(xs, d["few_shot"], label=_("few-shot prompting"), color="#dd8452")
    ax.plot(xs, d["fine_tuned"], label=_("fine-tuned model"), color="#4c72b0")
    crossover = d.get("break_even")
    if crossover is not None and xs and crossover <= xs[-1]:
        ax.axvline(crossover, color="grey", linestyle=":", label=_("break-even ≈ {requests:,.0f}/month").format(requests=crossover))
    if d.get("marker"):
        x, few_shot, fine_tuned = d["marker"]
        ax.scatter([x, x], [few_shot, fine_tuned], color="black", zorder=3, s=18)
    ax.set_xlabel(_("requests per month"))
    ax.set_ylabel(_("US dollars per month"))
    if d["title"]:
        ax.set_title(d["title"], fontsize=10)
    ax.legend()
    return fig


def _draw_learning_curve(d: dict[str, Any]) -> Any:
    fig = _figure()
    ax = fig.subplots()
    train, valid, best_step = d["train"], d["valid"], d.get("best_step")
    if train:
        ax.plot([s for s, _v in train], [v for _s, v in train], label=_("training loss"), color="#4c72b0")
    if valid:
        ax.plot([s for s, _v in valid], [v for _s, v in valid], "o-", label=_("validation loss"), color="#dd8452")
    if best_step is not None:
        ax.axvline(best_step, color="grey", linestyle=":", label=_("best validation loss (step {step})").format(step=best_step))
    ax.set_xlabel(_("step"))
    ax.set_ylabel(_("loss"))
    ax.set_title(d["title"])
    if train or valid:
        ax.legend()
    return fig


def _draw_data_size_curves(d: dict[str, Any]) -> Any:
    fig = _figure()
    ax = fig.subplots()
    for color, run in zip(RUN_COLORS * 4, d["runs"]):
        if run["valid"]:
            ax.plot([s for s, _v in run["valid"]], [v for _s, v in run["valid"]], "o-", color=color,
                    label=_("{n} examples").format(n=run["examples"]))
        if run.get("best"):
            ax.scatter([run["best"][0]], [run["best"][1]], s=90, facecolors="none", edgecolors=color, zorder=3)
    ax.set_xlabel(_("step"))
    ax.set_ylabel(_("validation loss"))
    ax.set_title(d["title"], fontsize=10)
    if d["runs"]:
        ax.legend()
    return fig


def _draw_strategy_bars(d: dict[str, Any]) -> Any:
    fig = _figure(6.4, 3.0)
    ax = fig.subplots()
    values = d["values"]
    bars = ax.bar(d["strategies"], values, color=[STRATEGY_COLORS.get(s, "#999") for s in d["strategies"]])
    for bar, value, interval in zip(bars, values, d["intervals"]):
        top = value
        if interval:  # the 95% bootstrap interval of the mean, as an error bar
            x = bar.get_x() + bar.get_width() / 2
            ax.errorbar([x], [value], yerr=[[value - interval[0]], [interval[1] - value]], color="#333", capsize=4)
            top = interval[1]
        ax.text(bar.get_x() + bar.get_width() * 0.78, top + 0.01, f"{value:.2f}", ha="center", va="bottom")
    ax.set_ylim(0, 1.15)
    ax.set_ylabel(d["ylabel"])
    ax.set_title(d["title"], fontsize=10)
    return fig


#: Each chart kind's drawing function: plain data in, a ``matplotlib.figure.Figure`` out.
DRAWERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "token_histogram": _draw_token_histogram,
    "break_even_curve": _draw_break_even_curve,
    "learning_curve": _draw_learning_curve,
    "data_size_curves": _draw_data_size_curves,
    "strategy_bars": _draw_strategy_bars,
}

_DRAWING = threading.Lock()  # matplotlib's font cache and text layout are not made for threads (the service's requests)


def draw(kind: str, data: dict[str, Any]) -> Any:
    """The ``matplotlib.figure.Figure`` of a chart's kind and data (ValueError for an unknown kind)."""
    if kind not in DRAWERS:
        raise ValueError(f"no chart of kind {kind!r} (known: {', '.join(DRAWERS)})")
    with _DRAWING:
        return DRAWERS[kind](data)


def figure_png(fig: Any) -> bytes:
    """PNG bytes of a ``matplotlib.figure.Figure``."""
    buffer = io.BytesIO()
    with _DRAWING:
        fig.savefig(buffer, format="png")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# PNG, drawn here or by the local service
# --------------------------------------------------------------------------------------------


def draws_in_service() -> bool:
    """Whether :func:`png` asks the local service to draw (:func:`lessonlib.local_service.backend`
    decides: by default a running Jupyter kernel asks, so that its memory holds no matplotlib)."""
    return local_service.backend("plots") == "service"


def png(chart: Any, *, where: str | None = None) -> bytes:
    """PNG bytes of a :class:`Chart` (or of a ``matplotlib.figure.Figure``), for an ``ipywidgets.Image``.

    ``where``: "service" or "here"; by default :func:`draws_in_service` decides. A chart the service
    cannot draw (it does not start, an error) is drawn here: the image is the same.
    """
    if not isinstance(chart, Chart):
        return figure_png(chart)
    if where == "service" or (where is None and draws_in_service()):
        image = local_service.draw(chart.kind, chart.data)
        if image is not None:
            return image
    return figure_png(chart.figure())


