"""The project's answer in one place: ``report.json`` (every step's results) and ``report.md`` (the same, to read),
and the model card that goes with the exported model.

The report holds what ran so far: split sizes, the metric and why, each strategy's score with its interval
and cost, the tuned model's paired gain, the decision with its reasons, and where the exported model is.
"""

from __future__ import annotations

import json
from typing import Any

from ..i18n import _
from .folder import Project


def collect(project: Project) -> dict[str, Any]:
    """Every step's results that exist, without the per-example lists (they stay in results/)."""
    report: dict[str, Any] = {"project": str(project.root), "settings": project.settings.to_dict()}
    for step in ("prepare", "baselines", "train", "evaluate", "decide", "export"):
        found = project.result(step)
        if found is not None:
            report[step] = found
    for result in report.get("baselines", {}).get("results", []) + ([report["evaluate"]["tuned"]] if "evaluate" in report else []):
        result.pop("per_example", None)
    return report


def _strategies(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list(report.get("baselines", {}).get("results", [])) + ([report["evaluate"]["tuned"]] if "evaluate" in report else [])


def text(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    lines = ["# " + _("Your own data: {data}").format(data=report["settings"]["data"]), ""]
    prepared = report.get("prepare")
    if prepared:
        sizes = prepared["sizes"]
        lines += [_("- Data: {n} examples read ({shape}, {encoding}), {kept} kept after the data doctor ({findings} findings).").format(
                      n=prepared["examples"], shape=prepared["shape"], encoding=prepared["encoding"], kept=prepared["kept"], findings=prepared["finding_count"]),
                  _("- Split (seed {seed}): {train} train, {valid} validation, {test} test{how}.").format(
                      seed=prepared["seed"], how=_(", stratified by label") if prepared["stratified"] else _(", your own test file") if prepared["own_test"] else "", **sizes),
                  _("- Metric: {metric}, because {reason}.").format(metric=prepared["metric"], reason=prepared["metric_reason"]),
                  "- " + prepared["evidence_sentence"] + ("." if prepared["evidence"]["enough"] else _(": too few to tell a real gain from noise."))]
        if prepared["leakage"]:
            lines.append(_("- Leakage: {n} test inputs are also training inputs.").format(n=prepared["leakage"]))
        lines.append("")
    strategies = _strategies(report)
    if strategies:
        lines += ["| " + _("strategy") + " | " + _("score") + " | " + _("95% interval") + " | " + _("prompt tokens") + " | " + _("$ per 1,000 requests") + " |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for r in strategies:
            low, high = r["interval"] or (r["score"], r["score"])
            lines.append(f"| {r['strategy']} | {r['score']:.3f} | {low:.2f}–{high:.2f} | {r['prompt_tokens']:.0f} | {r['usd_per_1000']:.4f} |")
        price = report["baselines"]
        lines += ["", _("(costs at {model} prices of {date}; the fine-tuned row at its fine-tuned prices)").format(
            model=price["price_model"], date=price["prices_as_of"]), ""]
        if "training_cost" in price:
            cost = price["training_cost"]
            lines += [_("- Fine-tuning {model} on the training split: ${usd:.4f} ({tokens:,} tokens x {epochs} epochs), once.").format(
                model=price["price_model"], usd=cost["usd"], tokens=cost["billed_tokens_per_epoch"], epochs=cost["epochs"]), ""]
    if "evaluate" in report:
        for key, name in (("vs_best", report["evaluate"]["against"]), ("vs_trivial", "trivial")):
            gain = report["evaluate"][key]
            verdict = _("a real gain") if gain["real"] else _("a real loss") if gain["loss"] else _("noise (the interval includes 0)")
            lines.append(_("- Tuned vs {name}: {gain:+.3f} (paired 95% interval {low:+.2f} to {high:+.2f}): {verdict}.").format(
                name=name, gain=gain["gain"], low=gain["interval"][0], high=gain["interval"][1], verdict=verdict))
        lines.append("")
    if "train" in report:
        t = report["train"]
        lines += [_("- Training: {steps} steps in {seconds:.0f} s{early}, peak memory {rss:.2f} GB.").format(
            steps=t["steps"], seconds=t["train_seconds"], early=_(" (early stopping kept step {step})").format(step=t["best_step"]) if t["early_stopped"] else "",
            rss=t["peak_rss_gb"]), ""]
    if "decide" in report:
        d = report["decide"]
        lines += ["## " + _("Recommendation: {recommendation}").format(recommendation=_(d["recommendation"])), ""]
        lines += [f"{i}. {reason}" for i, reason in enumerate(d["reasons"], 1)] + [""]
    if "export" in report:
        e = report["export"]
        lines += ["## " + _("To take away"), "",
                  _("- merged model (plain transformers): {path}").format(path=e["merged"]),
                  _("- LoRA adapter: {path}").format(path=e["adapter"]),
                  _("- data in OpenAI's chat format (OpenAI, Azure): {path}").format(path=e["openai"]),
                  _("- the same run for a GPU (`trl sft`): {path}").format(path=e["trl_sft"]),
                  _("- model card: {path}").format(path=e["model_card"]), ""]
    return "\n".join(lines)


def write_report(project: Project) -> dict[str, Any]:
    """Write ``report.json`` and ``report.md`` and return the report."""
    report = collect(project)
    project.path("report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    project.path("report.md").write_text(text(report), encoding="utf-8")
    return report


def model_card(project: Project) -> str:
    """The exported model's README.md: what it was trained on, how it is measured, its scores with intervals, its limits."""
    from .. import models

    report = collect(project)
    prepared, trained = report["prepare"], report["train"]
    base = models.DEFAULT_MODEL_ID if project.settings.model.lower() == models.DEFAULT_MODEL else project.settings.model
    scores = "\n".join(f"| {r['strategy']} | {r['score']:.3f} | {(r['interval'] or [0, 0])[0]:.2f}–{(r['interval'] or [0, 0])[1]:.2f} |"
                       for r in _strategies(report))
    limits = [prepared["evidence_sentence"] + ".",
              _("A 135M-parameter model: it learns a format and a vocabulary, not new knowledge; check its answers.")]
    if prepared["leakage"]:
        limits.append(_("{n} test inputs were also training inputs.").format(n=prepared["leakage"]))
    system = prepared["system"]
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": "..."}]
    data = _("{n} examples from {data} ({shape}); {train} for training, {valid} for validation, {test} for the test (seed {seed}).").format(
        n=prepared["kept"], data=project.settings.data, shape=prepared["shape"], seed=prepared["seed"], **prepared["sizes"])
    losses = [f"{x:.3f}" if isinstance(x, (int, float)) else "?" for x in (trained["first_loss"], trained["final_loss"])]
    training = _("Training: {steps} steps, loss {first} -> {last}.").format(steps=trained["steps"], first=losses[0], last=losses[1])
    lines = ["---", f"base_model: {base}", "library_name: transformers", "tags: [lessonlib, fine-tuning-companion, sft, lora, merged]", "---", "",
             f"# {project.root.name}", "",
             _("{base} fine-tuned with LoRA (the Fine-Tuning Companion's recipe, `lessonlib project run`), adapter merged.").format(base=base), "",
             "## " + _("Data"), data, "", "## " + _("Metric"), f"{prepared['metric']}: {prepared['metric_reason']}.", "",
             "## " + _("Scores on the test split"), "| " + _("strategy") + " | " + _("score") + " | " + _("95% interval") + " |",
             "| --- | ---: | ---: |", scores, "", training, "", "## " + _("Limits"), *("- " + line for line in limits), "",
             "## " + _("Use it"), "```python", USAGE.replace("MESSAGES", json.dumps(messages, ensure_ascii=False)), "```", ""]
    return "\n".join(lines)


#: How the merged model answers with plain transformers (the model card shows it).
USAGE = """from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")
model = AutoModelForCausalLM.from_pretrained("THIS_FOLDER")
messages = MESSAGES
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
reply = model.generate(**inputs, max_new_tokens=64, do_sample=False)
print(tokenizer.decode(reply[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))"""
