"""The steps of a project, each a plain call on the project folder that leaves ``results/STEP.json``.

``prepare`` (read, check, split, choose the metric) -> ``baselines`` (trivial, zero-shot, few-shot,
retrieval) -> ``train`` (the course's TRL + LoRA recipe, :func:`lessonlib.train.run`, early stopping on the
validation split) -> ``evaluate`` (the tuned model, with its paired interval against the best baseline) ->
``decide`` (the lesson's checklist, :func:`lessonlib.decide.decide`) -> ``export`` (merged model, adapter,
OpenAI chat files, the ``trl sft`` folder, a model card). :func:`run` runs them in order, or one of them.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ..errors import LessonError
from ..i18n import _
from .folder import Project

STEPS = ("prepare", "baselines", "train", "evaluate", "decide", "export")
Log = Callable[[str], None]


def _quiet(message: str) -> None:
    """The default log: nothing (the command line passes its own)."""


def _write(project: Project, name: str, examples: list[dict[str, Any]]) -> str:
    from ..corpora import write_jsonl

    path = project.data_dir / f"{name}.jsonl"
    write_jsonl(examples, path)
    return str(path)


def _read(project: Project, name: str) -> list[dict[str, Any]]:
    from ..data import read_examples

    return read_examples(project.data_dir / f"{name}.jsonl")


def prepare(project: Project, log: Log = _quiet) -> dict[str, Any]:
    """Read the learner's file, check it, split it (seeded, stratified for labels) and choose the metric."""
    from .. import metrics
    from ..data import splitting
    from ..data.tables import read_table

    s = project.settings
    table = read_table(project.path(s.data), input=s.input, output=s.output, system=s.system)
    outputs = [splitting.output_of(e) for e in table.examples]
    labels = metrics.is_labels(outputs)
    if s.metric is None:
        metric, reason = metrics.infer_metric(outputs)
    elif s.metric in metrics.METRICS:
        metric, reason = s.metric, _("the metric you chose: {name}").format(name=s.metric)
    else:
        metric, reason = "custom", _("your own score() from {path}").format(path=s.metric)
    counts = splitting.label_counts(table.examples)
    if metric == "accuracy" and len(counts) < 2:
        raise LessonError(_("{path}: every output is the same label ('{label}'): there is nothing to learn or to measure").format(
            path=s.data, label=next(iter(counts))), fix=_("give examples of at least two labels"), exit_code=2)
    findings = splitting.check_examples(table.examples, table.lines)
    unique = {(splitting.input_of(e).strip(), splitting.output_of(e).strip()) for e in table.examples}
    if len(unique) < 2:
        raise LessonError(_("{path}: all {n} examples are the same example").format(path=s.data, n=len(table.examples)),
                          fix=_("give different examples (the data doctor found only duplicates)"), exit_code=2)
    empty = [f for f in findings if f.code == "missing_content"]
    if len(empty) == len(table.examples):
        raise LessonError(_("{path}: every output is empty").format(path=s.data), fix=_("check --output: the column the model should answer"), exit_code=2)
    # duplicates and empty outputs are left out (the doctor lists them); the rest is split
    seen: set[tuple[str, str]] = set()
    examples = []
    for e in table.examples:
        key = (splitting.input_of(e).strip(), splitting.output_of(e).strip())
        if key[1] and key not in seen:
            seen.add(key)
            examples.append(e)
    def system_of(example: dict[str, Any]) -> str | None:
        first = example["messages"][0]
        return first["content"] if first.get("role") == "system" else None

    system, added = s.system or system_of(examples[0]), s.system
    if labels and not s.system and not any(system_of(e) for e in examples):  # a prompt that names the labels, for a fair zero-shot
        system = added = _("Answer with exactly one of these labels: {labels}.").format(labels=", ".join(sorted(counts, key=str.lower)))
        examples = [{"messages": [{"role": "system", "content": system}, *e["messages"]]} for e in examples]
    own_test = None
    if s.test:
        own_test = read_table(project.path(s.test), input=s.input, output=s.output, system=added).examples
    parts = splitting.split_examples(examples, seed=s.seed, valid=s.valid, test=s.test_share, labels=labels, test_examples=own_test)
    leaked = splitting.leakage(parts.train, parts.test)
    evidence = splitting.evidence(len(parts.test))
    for name in ("train", "valid", "test"):
        _write(project, name, getattr(parts, name))
    result = {
        "shape": table.shape, "encoding": table.encoding, "columns": table.columns, "examples": len(table.examples),
        "kept": len(examples), "sizes": parts.sizes, "seed": s.seed, "stratified": parts.stratified, "own_test": parts.own_test,
        "labels": dict(counts.most_common()) if labels else None, "metric": metric, "metric_reason": reason, "system": system,
        "findings": [f.to_dict() for f in findings[:50]], "finding_count": len(findings), "leakage": leaked,
        "evidence": evidence.to_dict(), "evidence_sentence": evidence.sentence(),
    }
    project.save_result("prepare", result)
    log(_("Read {n} examples ({shape}, {encoding}); kept {kept}; split {train}/{valid}/{test} (seed {seed}{stratified}).").format(
        n=result["examples"], shape=table.shape, encoding=table.encoding, kept=len(examples), seed=s.seed,
        stratified=_(", stratified by label") if parts.stratified else "", **parts.sizes))
    log(_("Metric: {metric}, because {reason}.").format(metric=metric, reason=reason))
    log(evidence.sentence() + ("" if evidence.enough else _(": too few to tell a real gain from noise")))
    if findings:
        log(_("The data doctor: {n} findings (duplicates and empty outputs left out), e.g. {first}").format(n=len(findings), first=findings[0].message))
    if leaked:
        log(_("Leakage: {n} test inputs are also training inputs: their scores measure memory, not skill.").format(n=leaked))
    return result


def _scorer(project: Project, prepared: dict[str, Any]) -> Any:
    from .. import metrics

    return metrics.scorer(prepared["metric"], project.path(project.settings.metric) if prepared["metric"] == "custom" else None)


def _scoring_context(project: Project) -> dict[str, Any]:
    from .. import costs, tokens
    from .scoring import max_new_tokens

    prepared = project.need("prepare", "scoring")
    train = _read(project, "train")
    price = costs.get_price(project.settings.price_model)
    return {"prepared": prepared, "train": train, "test": _read(project, "test"), "score": _scorer(project, prepared),
            "labels": bool(prepared["labels"]), "price": price, "encoding": tokens.encoding_for(price.model),
            "new_tokens": max_new_tokens(train, project.settings.model)}


def _replies(log: Log) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        log(_("  {done}/{total} replies").format(done=done, total=total))
    return show


def _training_cost(c: dict[str, Any]) -> dict[str, Any]:
    """What fine-tuning on the training split would cost at the price model's training price (OpenAI's default epochs)."""
    from .. import costs, tokens

    counts = [tokens.count_messages(e["messages"], c["encoding"]) for e in c["train"]]
    return costs.training_cost(costs.billed_tokens(counts, c["price"]), None, c["price"], n_examples=len(counts)).to_dict()


def baselines(project: Project, log: Log = _quiet) -> dict[str, Any]:
    """Trivial, zero-shot, few-shot and retrieval on the test split, each with its interval and cost."""
    from .scoring import BASELINES, describe, score_strategy

    c = _scoring_context(project)
    results = []
    for number, strategy in enumerate(BASELINES, start=1):
        log(_("[{i}/{n}] {strategy} on {count} test examples…").format(i=number, n=len(BASELINES), strategy=strategy, count=len(c["test"])))
        results.append(score_strategy(strategy, c["train"], c["test"], score=c["score"], labels=c["labels"], k=project.settings.k,
                                      model=project.settings.model, adapter=None, price=c["price"], encoding=c["encoding"],
                                      new_tokens=c["new_tokens"], progress=_replies(log)))
        log("  " + describe(results[-1]))
    best = max(results, key=lambda r: (r["score"], -BASELINES.index(r["strategy"])))
    value = {"results": results, "best": best["strategy"], "metric": c["prepared"]["metric"], "price_model": c["price"].model,
             "prices_as_of": c["price"].as_of, "training_cost": _training_cost(c)}
    project.save_result("baselines", value)
    log(_("Best baseline: {strategy} ({score:.3f}).").format(strategy=best["strategy"], score=best["score"]))
    log(_("Fine-tuning {model} on the training split would cost ${usd:.4f} ({tokens:,} tokens x {epochs} epochs).").format(
        model=c["price"].model, usd=value["training_cost"]["usd"], tokens=value["training_cost"]["billed_tokens_per_epoch"],
        epochs=value["training_cost"]["epochs"]))
    return value


def run_config(project: Project) -> Any:
    """The course's :class:`~lessonlib.train.RunConfig` for this project: LoRA, early stopping on the validation split."""
    import math

    from ..train import RunConfig

    s = project.settings
    prepared = project.need("prepare", "train")
    n_train = prepared["sizes"]["train"]
    steps = max(10, min(s.max_steps, math.ceil(s.epochs * n_train / s.batch_size)))
    valid = prepared["sizes"]["valid"] > 0
    every = max(5, steps // 8)
    return RunConfig(model=s.model, train_file=str(project.data_dir / "train.jsonl"),
                     valid_file=str(project.data_dir / "valid.jsonl") if valid else None, output_dir=str(project.path("model", "adapter")),
                     max_steps=steps, batch_size=s.batch_size, learning_rate=1e-3, seed=s.seed, max_length=512,
                     eval_every=every if valid else 0, early_stopping_patience=3 if valid else 0, save_every=every,
                     log_every=max(1, steps // 50), overwrite=True)


def train(project: Project, log: Log = _quiet, *, resume: bool = False, anyway: bool = False, on_event: Any = None, stop: Any = None) -> dict[str, Any]:
    """Train the adapter with the course's recipe; refused on too small a test set unless ``anyway``."""
    from .. import models
    from ..train import run

    prepared = project.need("prepare", "train")
    if not prepared["evidence"]["enough"] and not anyway:
        raise LessonError(_("{evidence}: a score on so few examples cannot show whether training helped").format(evidence=prepared["evidence_sentence"]),
                          fix=_("add examples (or a bigger --test file), or train anyway with --anyway (the decision will say the evidence is thin)"))
    cfg = run_config(project)
    log(_("Training: {steps} steps at most, batch {batch}, early stopping on {valid} validation examples…").format(
        steps=cfg.max_steps, batch=cfg.batch_size, valid=prepared["sizes"]["valid"]))
    models.make_room_for_training()  # the baselines' model goes: training needs the memory (Binder has 2 GB)
    result = run(cfg, on_event=on_event, stop=stop, resume=resume, owns_process=True)
    value = {"adapter": result.output_dir, "steps": result.steps, "stopped": result.stopped, "early_stopped": result.early_stopped,
             "first_loss": result.first_loss, "final_loss": result.final_loss, "eval_loss": result.eval_loss, "best_step": result.best_step,
             "train_seconds": result.train_seconds, "peak_rss_gb": result.peak_rss_gb, "config": cfg.to_dict(), "anyway": anyway}
    project.save_result("train", value)
    log(_("Trained {steps} steps in {seconds:.0f} s; loss {first} -> {last}.").format(
        steps=result.steps, seconds=result.train_seconds, first=f"{result.first_loss:.3f}" if result.first_loss is not None else "?",
        last=f"{result.final_loss:.3f}" if result.final_loss is not None else "?"))
    return value


def evaluate(project: Project, log: Log = _quiet) -> dict[str, Any]:
    """The tuned model on the test split, and its paired gain over the best baseline and over the trivial one."""
    from .scoring import describe, paired_gain, score_strategy

    trained = project.need("train", "evaluate")
    found = project.need("baselines", "evaluate")
    c = _scoring_context(project)
    log(_("fine-tuned on {count} test examples…").format(count=len(c["test"])))
    tuned = score_strategy("fine-tuned", c["train"], c["test"], score=c["score"], labels=c["labels"], k=project.settings.k,
                           model=project.settings.model, adapter=trained["adapter"], price=c["price"], encoding=c["encoding"],
                           new_tokens=c["new_tokens"], progress=_replies(log))
    log("  " + describe(tuned))
    by_name = {r["strategy"]: r for r in found["results"]}
    best = by_name[found["best"]]
    value = {"tuned": tuned, "against": found["best"], "vs_best": paired_gain(best["per_example"], tuned["per_example"]),
             "vs_trivial": paired_gain(by_name["trivial"]["per_example"], tuned["per_example"])}
    project.save_result("evaluate", value)
    gain = value["vs_best"]
    log(_("Tuned vs {best}: gain {gain:+.3f} (95% interval {low:+.2f} to {high:+.2f}): {verdict}.").format(
        best=found["best"], gain=gain["gain"], low=gain["interval"][0], high=gain["interval"][1],
        verdict=_("a real gain") if gain["real"] else _("a real loss") if gain["loss"] else _("noise (the interval includes 0)")))
    return value


def decide(project: Project, log: Log = _quiet) -> dict[str, Any]:
    """The lesson's checklist answered from the measurements (:func:`lessonlib.decide.decide`), thin evidence included."""
    from .. import decide as deciding

    prepared = project.need("prepare", "decide")
    found = project.need("baselines", "decide")
    tuned = project.result("evaluate")
    scores = {r["strategy"]: r["score"] for r in found["results"]}
    paired = {r["strategy"]: r["per_example"] for r in found["results"]}
    if tuned:
        scores["fine-tuned"], paired["fine-tuned"] = tuned["tuned"]["score"], tuned["tuned"]["per_example"]
    answers = deciding.Answers(use_case=_("answer like the examples of {data}").format(data=project.settings.data), tried_prompting=True,
                               tried_retrieval=True, examples=prepared["sizes"]["train"], stronger_model_untried=True)
    decision = deciding.decide(answers, scores, paired)
    recommendation, reasons = str.__str__(decision.recommendation), list(decision.reasons)  # English: code compares it
    if not prepared["evidence"]["enough"]:
        reasons.append(_("The evidence is too thin: {evidence}. Whatever the scores say, collect more examples before you rely on them.").format(
            evidence=prepared["evidence_sentence"]))
        recommendation = "collect more data first"
    if prepared["leakage"]:
        reasons.append(_("{n} test inputs are also in training: the scores are optimistic.").format(n=prepared["leakage"]))
    value = {"recommendation": recommendation, "reasons": reasons, "scores": scores, "best_baseline": decision.best_baseline,
             "gain": decision.gain, "answers": asdict(answers)}
    project.save_result("decide", value)
    log(_("Decision: {recommendation}.").format(recommendation=_(recommendation)))
    for reason in reasons:
        log("  - " + reason)
    return value


def export(project: Project, log: Log = _quiet) -> dict[str, Any]:
    """What to take away: the merged model, the adapter, OpenAI chat files, the trl sft folder and a model card."""
    from ..models.weights import quiet_transformers
    from ..train import export_command
    from ..train.export import export as export_folder
    from ..train.runner import merge_adapter
    from .report import model_card

    trained = project.need("train", "export")
    cfg = run_config(project)
    out = project.path("export")
    if out.exists():
        shutil.rmtree(out)
    (out / "openai").mkdir(parents=True)
    for name in ("train", "valid"):
        shutil.copyfile(project.data_dir / f"{name}.jsonl", out / "openai" / f"{name}.jsonl")
    log(_("Merging the adapter into the base model…"))
    with quiet_transformers(), warnings.catch_warnings():  # no per-tensor progress bars or deprecation notes in the learner's log
        warnings.simplefilter("ignore", FutureWarning)
        merged = merge_adapter(cfg.model, trained["adapter"], project.path("model", "merged"))
    export_folder(cfg, out / "trl-sft")
    (out / "trl-sft.sh").write_text(export_command(cfg) + "\n", encoding="utf-8")
    card = model_card(project)
    (merged / "README.md").write_text(card, encoding="utf-8")
    (out / "README.md").write_text(card, encoding="utf-8")
    value = {"merged": str(merged), "adapter": trained["adapter"], "openai": str(out / "openai"), "trl_sft": str(out / "trl-sft"),
             "model_card": str(merged / "README.md")}
    project.save_result("export", value)
    log(_("Exported: the merged model in {merged}, the adapter in {adapter}, OpenAI chat files in {openai}.").format(**value))
    return value


SIMPLE_STEPS: dict[str, Callable[[Project, Log], dict[str, Any]]] = {
    "prepare": prepare, "baselines": baselines, "evaluate": evaluate, "decide": decide, "export": export}


def run(project: Project, *, step: str | None = None, log: Log = _quiet, resume: bool = False, anyway: bool = False,
        on_event: Any = None, stop: Any = None) -> dict[str, Any]:
    """Every step in order (or ``step`` alone), then the report; returns the report."""
    from .report import write_report

    if step is not None and step not in STEPS:
        raise LessonError(_("unknown step '{step}'").format(step=step), fix=_("use one of: {names}").format(names=", ".join(STEPS)), exit_code=2)
    for name in STEPS if step is None else (step,):
        if name == "train":
            train(project, log, resume=resume, anyway=anyway, on_event=on_event, stop=stop)
        else:
            SIMPLE_STEPS[name](project, log)
    return write_report(project)
