"""The local fine-tuning launcher: config, machine plan, real (tiny) TRL runs, stop/resume, CLI, widget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from lessonlib import corpora, models
from lessonlib.errors import LessonError
from lessonlib.train import ProgressEvent, RunConfig, StopFlag, export_command, last_checkpoint, plan_for, run

_plan_for = plan_for
from lessonlib.train.recipe import CHATML_TRAINING_TEMPLATE


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("data")
    lines = corpora.split_path("recipes", "train").read_text(encoding="utf-8").splitlines()
    (folder / "train.jsonl").write_text("\n".join(lines[:16]) + "\n", encoding="utf-8")
    (folder / "valid.jsonl").write_text("\n".join(lines[16:20]) + "\n", encoding="utf-8")
    return folder / "train.jsonl", folder / "valid.jsonl"


def tiny(tmp_path: Path, data: tuple[Path, Path], **overrides) -> RunConfig:
    values = {"train_file": str(data[0]), "valid_file": str(data[1]), "output_dir": str(tmp_path / "run"), "max_steps": 2,
                  "batch_size": 2, "max_length": 160, "save_every": 1}
    values.update(overrides)
    return RunConfig(**values)


def test_config_yaml_round_trip(tmp_path):
    cfg = RunConfig(max_steps=7, lora_target_modules=["q_proj"], valid_file=None)
    assert RunConfig.load(cfg.save(tmp_path / "run.yaml")) == cfg


@pytest.mark.parametrize("values,message", [
    ({"method": "qlora"}, "method"),
    ({"batch_size": 0}, "batch_size"),
    ({"learning_rate": 3}, "learning_rate"),
    ({"max_steps": 0, "epochs": 0}, "nothing to train"),
    ({"bf16": "maybe"}, "bf16"),
    ({"lerning_rate": 1e-3}, "did you mean 'learning_rate'"),
])
def test_impossible_settings_are_refused_with_a_suggestion(values, message):
    with pytest.raises(LessonError) as info:
        RunConfig.from_dict(values)
    assert message in str(info.value) and info.value.fix


def test_bad_yaml_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_steps: [1, 2\n")
    with pytest.raises(LessonError, match="not valid YAML"):
        RunConfig.load(bad)


def test_machine_plan():
    import functools

    from lessonlib.system import ContainerLimits

    # the recipe set's longest example; no container limit (as on a laptop), whatever this machine's cgroup says
    plan_for = functools.partial(_plan_for, longest_example=258, limits=ContainerLimits(None, None, None, None))
    no_bf16 = {"cores": 2, "avx512_bf16": False, "amx": False}
    plan = plan_for(RunConfig(), device="cpu", cpu=no_bf16)
    assert plan.bf16 is False and plan.threads == 2 and plan.reasons
    assert plan_for(RunConfig(bf16="on"), device="cpu", cpu=no_bf16).bf16 is True
    big = plan_for(RunConfig(batch_size=8, max_length=512), device="cpu", cpu=no_bf16)
    small = plan_for(RunConfig(batch_size=1, max_length=64), device="cpu", cpu=no_bf16)
    assert big.activation_checkpointing is True and small.activation_checkpointing is False
    assert plan_for(RunConfig(threads=1), device="cpu", cpu=no_bf16).threads == 1
    native = {"cores": 2, "avx512_bf16": True, "amx": False}
    assert plan_for(RunConfig(), device="cpu", cpu=native).bf16 is True
    assert plan_for(RunConfig(bf16="off"), device="cpu", cpu=native).bf16 is False
    # frozen weights in bf16 only where autocast reads them as bf16 anyway, and only for LoRA
    assert plan_for(RunConfig(), device="cpu", cpu=native).weights_dtype == "bfloat16"
    assert plan_for(RunConfig(method="full"), device="cpu", cpu=native).weights_dtype == "float32"
    assert plan.weights_dtype == "float32" and plan.uses("compact_loss_head") and plan.pad_to_multiple_of is None  # trimmed heap: no pad tokens
    assert plan_for(RunConfig(), device="cpu", cpu=native).pad_to_multiple_of == 32  # native bf16: kept (not re-measured)
    # fp32 LoRA: the fastest of plain / lean / checkpointing that fits the budget
    assert plan.uses("lean_fp32") and plan.uses("heap_trim") and not plan.activation_checkpointing  # default 1.5 GB: lean
    # malloc settings cannot be undone: only where the run owns its process (the command line)
    assert not plan.uses("malloc_settings") and "owns its process" in plan.skipped["malloc_settings"]
    assert plan_for(RunConfig(), device="cpu", cpu=no_bf16, owns_process=True).uses("malloc_settings")
    tight = plan_for(RunConfig(memory_budget_gb=1.3), device="cpu", cpu=no_bf16)
    assert tight.activation_checkpointing is True and tight.uses("lean_fp32")  # lean + checkpointing: ~1.05 GB measured
    assert tight.estimated_peak_gb <= 1.3 and not any("over the" in r for r in tight.reasons)
    too_small = plan_for(RunConfig(memory_budget_gb=0.9), device="cpu", cpu=no_bf16)
    assert too_small.activation_checkpointing and any("batch_size" in r for r in too_small.reasons)  # says what lowers it
    assert not plan_for(RunConfig(activation_checkpointing="on", memory_budget_gb=2), device="cpu", cpu=no_bf16).uses("lean_fp32")
    plain = plan_for(RunConfig(memory_budget_gb=1.8), device="cpu", cpu=no_bf16)
    assert not plain.uses("lean_fp32") and plain.activation_checkpointing is False
    assert plan_for(RunConfig(activation_checkpointing="off"), device="cpu", cpu=no_bf16).uses("lean_fp32")  # as close to the budget as it gets
    assert not plan_for(RunConfig(method="full", memory_budget_gb=4), device="cpu", cpu=no_bf16).uses("lean_fp32")
    assert not plan_for(RunConfig(memory_budget_gb=1.7), device="cpu", cpu=native).uses("lean_fp32")  # bf16 autocast stores bf16 weights itself
    # padding-free batches, except where TRL's packing does it itself or an example is longer than max_length
    assert plan.padding_free and plan.uses("attention_by_example")
    assert not plan_for(RunConfig(packing=True), device="cpu", cpu=no_bf16).padding_free
    long = plan_for(RunConfig(max_length=256), device="cpu", cpu=no_bf16)
    assert not long.padding_free and not long.uses("attention_by_example") and any("258 tokens" in r for r in long.reasons)
    # measures off: the public recipe alone, with checkpointing where its estimate needs it
    public = plan_for(RunConfig(measures="off", memory_budget_gb=2.0), device="cpu", cpu=no_bf16)
    assert public.measures == [] and public.padding_free and any("extras off" in r for r in public.reasons)
    assert public.micro_batch is None and public.examples_per_pass(2) == 2
    # still over the budget with checkpointing: one example a forward pass, added up into the same step
    short = plan_for(RunConfig(measures="off"), device="cpu", cpu=no_bf16)
    assert short.activation_checkpointing and short.micro_batch == 1 and short.examples_per_pass(2) == 1
    assert not short.padding_free and short.estimated_peak_gb < public.estimated_peak_gb
    assert any("gradient accumulation" in r for r in short.reasons)
    from lessonlib.train.recipe import sft_config

    args = sft_config(RunConfig(measures="off"), short, "runs/plan-test")
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.padding_free) == (1, 2, False)
    assert too_small.micro_batch == 1
    # the default run fits the default 1.5 GB budget on either kind of CPU
    for cpu in (no_bf16, native):
        default = plan_for(RunConfig(), device="cpu", cpu=cpu)
        assert default.estimated_peak_gb <= RunConfig().memory_budget_gb


def test_compact_loss_head_gives_the_same_loss_and_gradients(model_dir):
    """Scoring only labelled positions (our CPU switch of TRL's fused head) changes nothing but the cost."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from lessonlib.train import optimizations as measures

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    ids = torch.randint(0, model.config.vocab_size, (2, 40))
    labels = ids.clone()
    labels[:, :30] = -100  # a prompt of 30 tokens, a reply of 10
    labels[1, 35:] = -100  # padding
    results = []
    for compact in (False, True):
        model.zero_grad()
        with measures.applied(["compact_loss_head"] if compact else [], model) as active:
            out = model(input_ids=ids, labels=labels, fused_lm_head=True)
            out.loss.backward()
        assert active == (["compact_loss_head"] if compact else [])
        grad = model.model.layers[-1].self_attn.q_proj.weight.grad.clone()
        results.append((out.loss.detach(), out.entropy.detach(), grad))
    (loss_a, ent_a, grad_a), (loss_b, ent_b, grad_b) = results
    assert torch.allclose(loss_a, loss_b, rtol=1e-5)
    assert torch.allclose(ent_a, ent_b, rtol=1e-4, atol=1e-5)
    assert torch.allclose(grad_a, grad_b, rtol=1e-3, atol=1e-6)
    import trl.trainer.utils as trl_utils

    assert trl_utils._use_triton(torch.device("cpu")) is False  # restored after the block


def test_padding_free_rows_keep_each_example_to_itself(model_dir):
    """Two examples end to end in one row, positions restarting, no mask: each one's logits as if alone.

    Needs ``use_cache=False`` (TRL passes it in training): with a cache, transformers skips the per-example
    mask and the second example attends to the first (logits off by ~20 here).
    """
    import torch
    from transformers import AutoModelForCausalLM

    from lessonlib.train import optimizations as measures

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    a, b = torch.randint(100, 40000, (1, 37)), torch.randint(100, 40000, (1, 50))
    with torch.no_grad():
        alone_a, alone_b = model(a, use_cache=False).logits, model(b, use_cache=False).logits
        positions = torch.cat([torch.arange(37), torch.arange(50), torch.zeros(9, dtype=torch.long)])[None]  # + padding
        row = torch.cat([a, b, torch.zeros(1, 9, dtype=torch.long)], 1)
        packed = model(row, position_ids=positions, use_cache=False).logits
        # the runner's per-example attention (TRL's collator passes the example boundaries) gives the same
        bounds = torch.tensor([0, 37, 87, *range(88, 97)], dtype=torch.int32)
        with measures.applied(["attention_by_example"], model):
            by_example = model(row, position_ids=positions, use_cache=False, cu_seq_lens_q=bounds, cu_seq_lens_k=bounds).logits
    for logits in (packed, by_example):
        assert torch.allclose(logits[:, :37], alone_a, atol=1e-3) and torch.allclose(logits[:, 37:87], alone_b, atol=1e-3)


def test_lean_fp32_changes_memory_not_maths(model_dir):
    """bf16-stored frozen weights widened at use, SwiGLU recomputing its sigmoid, GQA without copies: the same
    loss and LoRA gradients as the plain model with the same (bf16-rounded) weights, and the loss of the fp32
    model to ~2 digits."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from lessonlib.train.optimizations import make_lean

    torch.manual_seed(0)
    ids = torch.randint(100, 40000, (1, 48))
    labels = ids.clone()
    labels[:, :30] = -100
    positions = torch.cat([torch.arange(20), torch.arange(28)])[None]  # two examples, padding-free

    def loss_and_grads(prepare):
        torch.manual_seed(1)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
        for name, param in model.named_parameters():  # non-zero B, so that A gets a gradient too
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.02)
        prepare(model)
        with torch.enable_grad():
            out = model(input_ids=ids, labels=labels, position_ids=positions, use_cache=False)
            out.loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        return out.loss.detach(), grads

    def rounded(model):  # the reference: plain modules, frozen linear weights rounded to bf16
        for module in model.modules():
            if type(module) is torch.nn.Linear and not module.weight.requires_grad and module.weight.shape[0] != model.config.vocab_size:
                module.weight.data = module.weight.data.bfloat16().float()
        return False

    def lean(model):
        assert make_lean(model) == (30 * 7, 30)
        return True

    def lean_checkpointed(model):  # the plan for budgets of ~1.1-1.4 GB
        make_lean(model)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()  # checkpointing acts in training mode only
        assert sum(getattr(m, "gradient_checkpointing", False) is True for m in model.modules()) >= 30  # every decoder layer
        return True

    loss_fp32, _ = loss_and_grads(lambda model: False)
    loss_ref, grads_ref = loss_and_grads(rounded)
    loss_lean, grads_lean = loss_and_grads(lean)
    loss_ckpt, grads_ckpt = loss_and_grads(lean_checkpointed)
    assert torch.allclose(loss_lean, loss_ref, rtol=1e-5) and torch.allclose(loss_ckpt, loss_lean, rtol=1e-5)
    assert abs(loss_lean.item() - loss_fp32.item()) < 0.02 * loss_fp32.item()
    assert grads_lean.keys() == grads_ref.keys() == grads_ckpt.keys() and len(grads_ref) == 30 * 2 * 2
    for name, grad in grads_ref.items():
        assert torch.allclose(grads_lean[name], grad, rtol=1e-3, atol=1e-6), name
        assert torch.allclose(grads_ckpt[name], grad, rtol=1e-3, atol=1e-6), name


def test_plan_sizes_come_from_the_model_config(monkeypatch, tmp_path):
    """A model folder's config gives its size; an unknown Hub model offline falls back to SmolLM2's."""
    from lessonlib.train.machine import SMOLLM2_PARAMS
    from lessonlib.train.runner import model_parameters

    config = {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 4,
              "num_key_value_heads": 4, "vocab_size": 100, "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert model_parameters(str(tmp_path)) == pytest.approx(0.1e6, rel=0.01)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert model_parameters("nobody/no-such-model") == SMOLLM2_PARAMS


def test_heap_is_trimmed_every_ten_layers_of_a_training_forward_pass(monkeypatch):
    """glibc's free heap pages go back every 10 decoder layers, only when gradients are on (training)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lessonlib import system
    from lessonlib.train import optimizations as measures

    calls: list[int] = []

    class Libc:
        def malloc_trim(self, pad: int) -> int:
            calls.append(pad)
            return 1

    monkeypatch.setattr(system, "glibc", lambda: Libc())
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=20,
                                         num_attention_heads=2, num_key_value_heads=1))
    handles = measures.trim_heap_in_forward(model)
    assert len(handles) == 2
    ids = torch.tensor([[1, 2, 3, 4]])
    model(ids).logits.sum().backward()
    assert calls == [0, 0]
    with torch.no_grad():  # evaluation and generation: no trims
        model(ids)
    assert len(calls) == 2
    for handle in handles:
        handle.remove()
    model(ids)
    assert len(calls) == 2


def test_training_template_renders_like_the_model_template(model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    for line in corpora.split_path("recipes", "valid").read_text(encoding="utf-8").splitlines()[:5]:
        messages = json.loads(line)["messages"]
        for msgs, prompt in ((messages, False), (messages[:2], True), (messages[1:], False)):
            original = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=prompt)
            ours = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=prompt, chat_template=CHATML_TRAINING_TEMPLATE)
            assert ours == original


def test_bad_data_is_refused_before_any_model_loads(tmp_path, monkeypatch):
    from lessonlib.train import runner

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    monkeypatch.setattr(runner, "sft_trainer", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(LessonError) as info:
        run(RunConfig(train_file=str(bad), valid_file=None, output_dir=str(tmp_path / "run")))
    assert "example_missing_assistant_message" in info.value.message and "line 1" in info.value.message


def test_max_length_over_the_context_is_refused(tmp_path, small_data, model_dir):
    with pytest.raises(LessonError, match="longer than the model's context"):
        run(tiny(tmp_path, small_data, max_length=100_000))


def test_a_real_run_end_to_end(tmp_path, small_data, model_dir):
    events: list[ProgressEvent] = []
    result = run(tiny(tmp_path, small_data), on_event=events.append)
    out = Path(result.output_dir)
    kinds = [e.kind for e in events]
    assert kinds[0] == "plan" and "start" in kinds and kinds[-1] == "end"
    assert [e.step for e in events if e.kind == "step"] == [1, 2]
    assert result.steps == 2 and not result.stopped
    assert result.first_loss > 0 and result.eval_loss is not None and result.tokens_per_s > 0
    for name in ("adapter_model.safetensors", "adapter_config.json", "config.yaml", "metrics.json", "README.md"):
        assert (out / name).is_file(), name
    assert RunConfig.load(out / "config.yaml").max_steps == 2
    card = (out / "README.md").read_text()
    assert "sha256" in card and "HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert json.loads((out / "metrics.json").read_text())["steps"] == 2
    reply = models.chat("Title: Pancakes\nIngredients:\n- 2 eggs\n- 1 cup flour", adapter=out, max_new_tokens=10)
    assert isinstance(reply, str)
    # the folder is never overwritten by accident
    with pytest.raises(LessonError, match="already holds a run"):
        run(tiny(tmp_path, small_data))


def test_an_identical_run_is_replayed_where_runs_are_shared(tmp_path, small_data, model_dir, monkeypatch):
    """With LESSONLIB_RUN_CACHE (tests, make notebooks), a second identical run copies the first and replays its events."""
    from lessonlib.train import runner

    monkeypatch.setenv("LESSONLIB_RUN_CACHE", str(tmp_path / "shared"))
    first_events: list[ProgressEvent] = []
    first = run(tiny(tmp_path, small_data, output_dir=str(tmp_path / "first")), on_event=first_events.append)

    def no_training(*args, **kwargs):
        raise AssertionError("an identical run trained again")

    monkeypatch.setattr(runner, "sft_trainer", no_training)
    again_events: list[ProgressEvent] = []
    from lessonlib import i18n

    i18n.set_language("fr")  # the French notebook's run: its plan explains itself in French, and computes the same
    try:
        again = run(tiny(tmp_path, small_data, output_dir=str(tmp_path / "again")), on_event=again_events.append)
    finally:
        i18n.set_language(None)
    assert again_events == first_events and again.history == first.history
    assert (again.first_loss, again.final_loss, again.eval_loss, again.steps) == (first.first_loss, first.final_loss, first.eval_loss, first.steps)
    assert again.output_dir == str(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["output_dir"] == again.output_dir
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "first" / name).read_bytes()
    with pytest.raises(AssertionError, match="trained again"):  # another setting is another run
        run(tiny(tmp_path, small_data, output_dir=str(tmp_path / "other"), learning_rate=1e-3))


def test_stop_then_resume(tmp_path, small_data, model_dir):
    stop = StopFlag()

    def stop_after_first_step(event: ProgressEvent) -> None:
        if event.kind == "step" and event.step == 1:
            stop.request()

    cfg = tiny(tmp_path, small_data, max_steps=3)
    first = run(cfg, on_event=stop_after_first_step, stop=stop)
    assert first.stopped and first.steps == 1
    assert last_checkpoint(cfg.output_dir).name == "checkpoint-1"
    second = run(cfg, resume=True)
    assert not second.stopped and second.steps == 3


def test_merged_model_answers_like_base_plus_adapter(tmp_path, small_data, model_dir):
    result = run(tiny(tmp_path, small_data, max_steps=2, valid_file=None, merge=True, learning_rate=0.01))
    merged = Path(result.output_dir) / "merged"
    assert (merged / "config.json").is_file() and list(merged.glob("*.safetensors"))
    prompt = "Title: Pancakes\nIngredients:\n- 2 eggs\n- 1 cup flour\n- 1 cup milk"
    with_adapter = models.chat(prompt, adapter=result.output_dir, max_new_tokens=12)
    assert models.chat(prompt, model=str(merged), max_new_tokens=12) == with_adapter


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(LessonError, match="nothing to resume"):
        run(RunConfig(output_dir=str(tmp_path / "empty")), resume=True)


def test_cli_train_then_chat(tmp_path, small_data, model_dir):
    out = tmp_path / "cli-run"
    result = run_cli("train", "local", "--data", str(small_data[0]), "--no-valid", "--out", str(out), "--steps", "2", "--quiet",
                     "--memory", "1.2", "--lora-r", "4")  # every RunConfig field is a flag
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert "done: 2 steps" in result.stderr
    assert "activation checkpointing on" in result.stderr  # the small budget's plan, said before training
    saved = RunConfig.load(out / "config.yaml")
    assert saved.memory_budget_gb == 1.2 and saved.lora_r == 4 and saved.valid_file is None
    chat = run_cli("chat", "--adapter", str(out), "Title: Toast\nIngredients:\n- bread", "--max-new-tokens", "8")
    assert chat.returncode == 0 and chat.stdout.strip()
    again = run_cli("train", "local", "--data", str(small_data[0]), "--out", str(out), "--steps", "2")
    assert again.returncode == 1 and "already holds a run" in again.stderr and "Traceback" not in again.stderr


def test_export_command():
    text = export_command(RunConfig())
    assert text.startswith("trl sft") and "--use_peft" in text and "--lora_r 8" in text and "HuggingFaceTB/SmolLM2-135M-Instruct" in text


def test_training_widget_runs_and_stops(tmp_path, small_data, model_dir):
    from lessonlib.widgets import TrainingMonitor

    monitor = TrainingMonitor(tiny(tmp_path, small_data, max_steps=3, valid_file=None), plot_every=1)
    original = monitor.on_event

    def click_stop_after_first_step(event):
        original(event)
        if event.kind == "step" and event.step == 1:
            monitor.stop.click()

    monitor.on_event = click_stop_after_first_step
    monitor.launch.click()
    result = monitor.join(timeout=600)
    assert result is not None and result.stopped and result.steps < 3  # the run is in a child process: it stops after its current step
    assert monitor.progress.value == result.steps and "Stopped" in monitor.status.value
    assert bytes(monitor.chart.value).startswith(b"\x89PNG") and "tokens/s" in monitor.stats.value
    assert monitor.launch.disabled is False


def test_the_plan_fits_what_the_container_has_free(monkeypatch):
    """On Binder, with other kernels running, the plan takes its leaner settings instead of a refusal."""
    from lessonlib import system
    from lessonlib.system import ContainerLimits

    monkeypatch.setattr(system, "heap_free_gb", lambda: 0.0)  # a fresh process (this one's heap holds the other tests')

    no_bf16 = {"cores": 2, "avx512_bf16": False, "amx": False}
    roomy = _plan_for(RunConfig(), device="cpu", cpu=no_bf16, longest_example=258, limits=ContainerLimits(2, None, 8.0, 1.0))
    assert not roomy.activation_checkpointing and not any("instead of" in r for r in roomy.reasons)
    crowded = _plan_for(RunConfig(), device="cpu", cpu=no_bf16, longest_example=258, limits=ContainerLimits(2, None, 2.0, 1.2))
    assert crowded.activation_checkpointing and crowded.estimated_peak_gb < roomy.estimated_peak_gb
    assert any("what this container has free now" in r and "0.15 GB left for them to move" in r for r in crowded.reasons)


def test_gpu_plan_uses_qlora_only_where_memory_is_short(monkeypatch):
    """The GPU branch of the plan (no GPU here: torch's answer and the package lookup are stubbed).

    QLoRA for a 7B model on a 24 GB card when bitsandbytes is installed; never for SmolLM2 on any card
    (measured on an H200: 4-bit weights only cost time there)."""
    import importlib.util

    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    real_find_spec = importlib.util.find_spec
    seven_b = {"parameters": 6.7e9, "gpu_memory_gb": 24.0}
    for present in (True, False):
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, present=present: (object() if present else None) if name == "bitsandbytes" else real_find_spec(name, *a))
        plan = plan_for(RunConfig(), device="cuda", cpu={"cores": 8}, **seven_b)
        assert plan.bf16 and plan.weights_dtype == "bfloat16" and not plan.uses("compact_loss_head")
        assert plan.quantization == ("4bit" if present else None)
        assert any("QLoRA" in reason for reason in plan.reasons)
        assert present or any("not installed" in reason for reason in plan.reasons)
        small = plan_for(RunConfig(), device="cuda", cpu={"cores": 8}, gpu_memory_gb=80.0)
        assert small.quantization is None and any("fits easily" in reason for reason in small.reasons)
        if present:
            assert plan_for(RunConfig(qlora="on"), device="cuda", cpu={"cores": 8}, gpu_memory_gb=80.0).quantization == "4bit"
        else:
            with pytest.raises(LessonError, match="bitsandbytes"):
                plan_for(RunConfig(qlora="on"), device="cuda", cpu={"cores": 8}, gpu_memory_gb=80.0)
    assert plan_for(RunConfig(qlora="off"), device="cuda", cpu={"cores": 8}, **seven_b).quantization is None
    full = plan_for(RunConfig(method="full"), device="cuda", cpu={"cores": 8}, **seven_b)
    assert full.quantization is None and full.weights_dtype == "float32"  # full fine-tuning keeps fp32 master weights


def _mapping_rss_kb(address: int) -> int | None:
    """Resident kB of the /proc/self/smaps mapping holding ``address``."""
    current = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:
            start, end = (int(x, 16) for x in head.split("-"))
            current = start <= address < end
        elif current and line.startswith("Rss:"):
            return int(line.split()[1])
    return None


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux /proc only")
def test_lean_conversion_gives_file_pages_back_and_loses_nothing(tmp_path):
    """The fp32 weights transformers maps from a safetensors file leave resident memory as each is
    converted to bf16; anonymous memory is never touched, and the mapped values stay readable."""
    import torch

    from lessonlib.train import optimizations as measures

    values = torch.arange(1 << 20, dtype=torch.float32)  # 4 MB
    path = tmp_path / "weights.bin"
    values.numpy().tofile(path)
    mapped = torch.from_file(str(path), shared=False, size=values.numel(), dtype=torch.float32)
    anonymous = values.clone()
    assert torch.equal(mapped, values)  # every page read: resident
    assert _mapping_rss_kb(mapped.data_ptr()) >= 4000
    release = measures._file_page_releaser()
    release(mapped)
    release(anonymous)
    assert _mapping_rss_kb(mapped.data_ptr()) < 100  # given back
    assert torch.equal(anonymous, values) and torch.equal(mapped, values)  # nothing lost (read again from the file)


# ---- the optional measures: each guarded, each undone ---------------------------------------------------------------

def _remove_trl_hook(monkeypatch):
    import trl.trainer.utils as trl_utils

    monkeypatch.delattr(trl_utils, "_use_triton")


def _remove_glibc(monkeypatch):
    from lessonlib import system

    monkeypatch.setattr(system, "glibc", lambda: None)


def _remove_sdpa_function(monkeypatch):
    import transformers.integrations.sdpa_attention as sdpa

    monkeypatch.delattr(sdpa, "sdpa_attention_forward")


def _remove_silu_backward(monkeypatch):
    from lessonlib.train import optimizations as measures

    real = measures._resolve
    monkeypatch.setattr(measures, "_resolve", lambda name: (_ for _ in ()).throw(LookupError(f"{name} is missing"))
                        if name == "torch.ops.aten.silu_backward" else real(name))


def _other_version(monkeypatch, *packages):
    from lessonlib import system

    real = system.package_version
    monkeypatch.setattr(system, "package_version", lambda name: "9.0.0" if name in packages else real(name))


REMOVALS = {
    "compact_loss_head": (_remove_trl_hook, "_use_triton"),
    "heap_trim": (_remove_glibc, "glibc"),
    "malloc_settings": (_remove_glibc, "glibc"),
    "attention_by_example": (_remove_sdpa_function, "sdpa_attention_forward"),
    "lean_fp32": (_remove_silu_backward, "silu_backward"),
}


@pytest.mark.parametrize("name", sorted(REMOVALS))
def test_a_measure_whose_parts_are_missing_is_skipped_with_the_reason(monkeypatch, name):
    from lessonlib.train import optimizations as measures

    no_bf16 = {"cores": 2, "avx512_bf16": False, "amx": False}
    before = plan_for(RunConfig(memory_budget_gb=1.5), device="cpu", cpu=no_bf16, owns_process=True)
    assert before.uses(name) and measures.check(name) is None
    remove, word = REMOVALS[name]
    remove(monkeypatch)
    assert word in measures.check(name)
    plan = plan_for(RunConfig(memory_budget_gb=1.5), device="cpu", cpu=no_bf16, owns_process=True)
    assert not plan.uses(name) and word in plan.skipped[name]
    assert any(r.startswith(f"{name} skipped") and word in r for r in plan.reasons)


def test_the_onednn_cache_measure_is_for_bf16_runs_in_their_own_process(monkeypatch):
    import os

    from lessonlib.train import optimizations as measures

    native = {"cores": 2, "avx512_bf16": True, "amx": False}
    monkeypatch.delenv(measures.ONEDNN_CACHE_VARIABLE, raising=False)
    assert plan_for(RunConfig(), device="cpu", cpu=native, owns_process=True).uses("onednn_cache")
    in_kernel = plan_for(RunConfig(activation_checkpointing="on"), device="cpu", cpu=native)
    assert not in_kernel.uses("onednn_cache") and "own" in in_kernel.skipped["onednn_cache"]
    assert "onednn_cache" not in plan_for(RunConfig(), device="cpu", cpu={**native, "avx512_bf16": False}, owns_process=True).skipped
    # the estimate counts what oneDNN's default cache holds more where the measure is off
    worker = plan_for(RunConfig(activation_checkpointing="on"), device="cpu", cpu=native, owns_process=True)
    assert in_kernel.estimated_peak_gb == pytest.approx(worker.estimated_peak_gb + 0.12)
    with measures.applied(["onednn_cache"], model=None) as on:
        assert on == ["onednn_cache"] and os.environ[measures.ONEDNN_CACHE_VARIABLE] == "64"
    assert measures.ONEDNN_CACHE_VARIABLE not in os.environ  # processes started later do not inherit it
    monkeypatch.setenv(measures.ONEDNN_CACHE_VARIABLE, "256")  # the learner's own choice wins
    plan = plan_for(RunConfig(), device="cpu", cpu=native, owns_process=True)
    assert not plan.uses("onednn_cache") and "256" in plan.skipped["onednn_cache"]


def test_a_measure_measured_with_another_library_version_is_skipped(monkeypatch):
    from lessonlib.train import optimizations as measures

    _other_version(monkeypatch, "transformers")
    assert "measured with transformers 5.24" in measures.check("attention_by_example")
    assert measures.check("compact_loss_head") is None  # it relies on trl only


def test_a_run_trains_with_every_measure_unavailable(tmp_path, small_data, model_dir, monkeypatch):
    """What each measure relies on is taken away: the public recipe alone trains, and the plan says why.

    TRL and transformers call the private parts themselves, so here they are made to look like other versions
    instead (the measures reaching into them are then skipped); glibc and ``silu_backward`` are taken away."""
    _remove_glibc(monkeypatch)
    _remove_silu_backward(monkeypatch)
    _other_version(monkeypatch, "trl", "transformers")
    result = run(tiny(tmp_path, small_data, bf16="off", valid_file=None, save_every=0, max_length=320))
    assert result.steps == 2 and result.first_loss > 0
    assert result.plan.measures == [] and set(result.plan.skipped) >= {"compact_loss_head", "heap_trim", "attention_by_example", "lean_fp32"}
    assert any("measured with trl 1.16" in r for r in result.plan.reasons) and any("glibc" in r for r in result.plan.reasons)


def _process_state() -> dict:
    """Everything a run might change for the whole process."""
    import os
    import warnings

    import datasets
    import torch
    import trl.trainer.utils as trl_utils
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.utils import logging as hf_logging

    return {"warnings": list(warnings.filters), "threads": torch.get_num_threads(), "verbosity": hf_logging.get_verbosity(),
            "hf_bars": hf_logging.is_progress_bar_enabled(), "datasets_bars": datasets.is_progress_bar_enabled(),
            "attention": dict(ALL_ATTENTION_FUNCTIONS.items()), "use_triton": trl_utils._use_triton, "environ": dict(os.environ),
            "grad": torch.is_grad_enabled()}


def test_a_run_leaves_the_process_as_it_found_it_after_success_stop_and_error(tmp_path, small_data, model_dir):
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)  # something other than the plan's choice
    hf_logging.set_verbosity_info()
    try:
        before = _process_state()
        cfg = tiny(tmp_path, small_data, bf16="off", valid_file=None, max_steps=3, max_length=320)  # every measure that can apply, lean included
        done = run(cfg)
        assert set(done.plan.measures) >= {"compact_loss_head", "heap_trim", "attention_by_example"}
        assert _process_state() == before

        stop = StopFlag()
        stopped = run(cfg.__class__(**{**cfg.to_dict(), "overwrite": True}), stop=stop,
                      on_event=lambda e: stop.request() if e.kind == "step" else None)
        assert stopped.stopped and _process_state() == before

        def fail(event: ProgressEvent) -> None:
            if event.kind == "step":
                raise RuntimeError("a problem in the middle of training")

        with pytest.raises(RuntimeError, match="middle of training"):
            run(cfg.__class__(**{**cfg.to_dict(), "overwrite": True}), on_event=fail)
        assert _process_state() == before
    finally:
        hf_logging.set_verbosity_warning()
        torch.set_num_threads(max(1, len(__import__("os").sched_getaffinity(0))))


def test_the_recipe_is_the_public_trl_code(small_data, tmp_path):
    """The recipe's objects are TRL's and PEFT's own, built from the run configuration and the plan."""
    from peft import LoraConfig
    from trl import SFTConfig

    from lessonlib.train import recipe

    cfg = RunConfig(lora_r=4, lora_target_modules=["q_proj", "k_proj", "v_proj"], max_steps=7)
    plan = plan_for(cfg, device="cpu", cpu={"cores": 2, "avx512_bf16": False, "amx": False})
    lora, args = recipe.lora_config(cfg), recipe.sft_config(cfg, plan, tmp_path)
    assert isinstance(lora, LoraConfig) and lora.r == 4 and set(lora.target_modules) == {"q_proj", "k_proj", "v_proj"}
    assert isinstance(args, SFTConfig) and args.max_steps == 7 and args.bf16 is False and args.assistant_only_loss
    assert args.padding_free and args.max_length is None  # padding-free: TRL leaves truncation to the data
    assert recipe.lora_config(RunConfig(method="full")) is None


def test_private_names_are_reached_only_in_the_optimizations_module():
    """A ``._name`` reached on another library's object appears in lessonlib/train/optimizations.py only."""
    import re

    root = Path(__file__).resolve().parent.parent / "lessonlib"
    pattern = re.compile(r"\b(?:torch|transformers|trl|peft|ctypes|libc|trl_utils|hf_logging|F|AttentionInterface|"
                         r"ALL_ATTENTION_FUNCTIONS|config|model|module|tokenizer|trainer)\b[\w.]*\._[a-zA-Z]\w*|getattr\([^)]*\"_[a-zA-Z]\w*\"")
    found = {str(path.relative_to(root)) for path in root.rglob("*.py") if pattern.search(path.read_text(encoding="utf-8"))}
    assert found <= {"train/optimizations.py"}, found


def test_training_monitor_follows_a_trainer_of_the_learners_own():
    """``monitor.callback()`` is a TrainerCallback: the view follows the trainer's hooks, Stop asks it to end."""
    from types import SimpleNamespace

    from transformers import TrainerCallback

    from lessonlib.widgets import TrainingMonitor

    monitor = TrainingMonitor()
    assert monitor.launch.disabled  # nothing to launch: the learner's trainer runs
    callback = monitor.callback()
    assert isinstance(callback, TrainerCallback) and not monitor.stop.disabled
    state = SimpleNamespace(global_step=0, max_steps=4, num_input_tokens_seen=0)
    control = SimpleNamespace(should_training_stop=False, should_save=False)
    callback.on_train_begin(None, state, control)
    for step in (1, 2):
        state.global_step, state.num_input_tokens_seen = step, 100 * step
        callback.on_log(None, state, control, logs={"loss": 2.0 / step, "learning_rate": 1e-3})
    assert monitor.progress.value == 2 and monitor.progress.max == 4 and [e.kind for e in monitor.events] == ["start", "step", "step"]
    assert bytes(monitor.chart.value).startswith(b"\x89PNG")
    monitor.stop.click()
    callback.on_step_end(None, state, control)
    assert control.should_training_stop and control.should_save  # the trainer ends after this step and saves it
    state.global_step = 4
    callback.on_log(None, state, control, logs={"loss": 0.4})
    assert "Stopped" in monitor.status.value and "last loss 0.400" in monitor.status.value


def test_a_trainer_of_the_learners_own_that_ends_is_remembered_with_its_plan(monkeypatch):
    """``monitor.callback(plan)``: a run that trained to its end tells later runs in this kernel what it measured."""
    from types import SimpleNamespace

    from lessonlib.train import MachinePlan, machine
    from lessonlib.widgets import TrainingMonitor

    monkeypatch.setattr(machine, "_TRAINED_HERE", None)
    monitor = TrainingMonitor()
    callback = monitor.callback(MachinePlan("cpu", 2, True, True, 1.76))
    state = SimpleNamespace(global_step=0, max_steps=2, num_input_tokens_seen=0)
    control = SimpleNamespace(should_training_stop=False, should_save=False)
    callback.on_train_begin(None, state, control)
    state.global_step = 1
    callback.on_log(None, state, control, logs={"loss": 2.0})
    assert machine._TRAINED_HERE is None  # not at its end yet
    state.global_step = 2
    callback.on_log(None, state, control, logs={"loss": 1.0})
    assert machine._TRAINED_HERE is not None and machine._TRAINED_HERE[0] == 1.76 and machine._TRAINED_HERE[1] > 0


def test_a_training_child_stops_when_its_parent_dies(tmp_path, small_data, model_dir):
    """A kernel killed or shut down mid-run (Binder's culler, the learner): its training child ends after its
    step rather than hold its memory for a run nobody follows."""
    import subprocess
    import sys
    import time

    import psutil

    config = tiny(tmp_path, small_data, max_steps=500, valid_file=None, save_every=0).save(tmp_path / "run.yaml")
    parent = f"""
import multiprocessing, os
from lessonlib.train import RunConfig, run_in_subprocess

def first(event):
    if event.kind == "step":  # the child is training: die at once, as a killed kernel does
        print(*[child.pid for child in multiprocessing.active_children()], flush=True)
        os._exit(0)

run_in_subprocess(RunConfig.load({str(config)!r}), on_event=first)
"""
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:  # files, not pipes: the child writes to them too
        subprocess.run([sys.executable, "-c", parent], stdout=stdout, stderr=stderr, timeout=300, cwd=tmp_path, check=False)
    children = [int(pid) for pid in out.read_text().split()]
    assert len(children) == 1, err.read_text()[-2000:]
    deadline = time.monotonic() + 60
    while psutil.pid_exists(children[0]):
        try:
            if psutil.Process(children[0]).status() == psutil.STATUS_ZOMBIE:  # ended, not yet reaped by its new parent
                break
        except psutil.NoSuchProcess:
            break
        if time.monotonic() > deadline:
            psutil.Process(children[0]).kill()
            pytest.fail("the training child went on after its parent died")
        time.sleep(0.2)


def test_a_run_in_a_subprocess_relays_its_events_and_its_errors(tmp_path, small_data, model_dir):
    from lessonlib.errors import LessonError
    from lessonlib.train import run_in_subprocess

    events = []
    result = run_in_subprocess(tiny(tmp_path, small_data, max_steps=2, valid_file=None), on_event=events.append)
    assert result.steps == 2 and result.plan.threads >= 1 and (tmp_path / "run" / "adapter_config.json").is_file()
    assert [e.step for e in events if e.kind == "step"] == [1, 2] and events[-1].kind == "end"
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n', encoding="utf-8")
    with pytest.raises(LessonError, match="broken.jsonl"):
        run_in_subprocess(tiny(tmp_path, (broken, small_data[1]), valid_file=None, output_dir=str(tmp_path / "other")))


def test_the_limits_runs_pass_their_early_stopping_settings_to_trl():
    """Notebook 08 shows these SFTConfig fields and EarlyStoppingCallback(early_stopping_patience=2) as what the runner uses."""
    import warnings

    from lessonlib import limits
    from lessonlib.train import plan_for, recipe

    config = limits.experiment_config("data/recipes/train.jsonl", "runs/test-early", valid_file="data/recipes/valid.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        args = recipe.sft_config(config, plan_for(config), config.output_dir)
    shown = {"eval_strategy": "steps", "eval_steps": 4, "save_strategy": "steps", "save_steps": 4, "load_best_model_at_end": True,
                 "metric_for_best_model": "eval_loss", "greater_is_better": False}
    assert {name: getattr(args, name) for name in shown} == shown
    assert config.early_stopping and config.early_stopping_patience == 2


def test_a_trainer_of_the_learners_own_is_replayed_where_runs_are_shared(tmp_path, small_data, model_dir, monkeypatch):
    """Notebook 04's own ``SFTTrainer`` cell in its French twin: with LESSONLIB_RUN_CACHE, an identical trainer trains one
    step, then ends with the first one's weights, log and events; another setting is another run."""
    from transformers import TrainerCallback

    from lessonlib import data
    from lessonlib.train.recipe import sft_trainer
    from lessonlib.train.replay_trainer import shared_progress_callback, trainer_key

    monkeypatch.setenv("LESSONLIB_RUN_CACHE", str(tmp_path / "shared"))

    class Steps(TrainerCallback):
        done = 0

        def on_step_end(self, *args, **kwargs):
            self.done += 1

    def trainer(name: str, **overrides) -> tuple:
        cfg = tiny(tmp_path, small_data, output_dir=str(tmp_path / name), valid_file=None, save_every=0, measures="off",
                   **overrides)
        events, steps = [], Steps()
        made = sft_trainer(cfg, plan_for(cfg), cfg.output_dir, data.read_examples(small_data[0]), None,
                           callbacks=[shared_progress_callback(events.append), steps])
        return made, events, steps

    def trained(made) -> dict:
        return {n: p.detach().clone() for n, p in made.model.named_parameters() if p.requires_grad}

    first, first_events, first_steps = trainer("first")
    other = trainer("other", learning_rate=1e-3)[0]
    other_key = trainer_key(other.args, other.model, other.train_dataset)
    del other
    assert other_key != trainer_key(first.args, first.model, first.train_dataset)  # another setting: another run
    first.train()
    again, again_events, again_steps = trainer("again")
    again.train()
    assert (first_steps.done, again_steps.done) == (2, 1)  # the identical run stopped after the step a callback cannot skip
    assert again.state.global_step == first.state.global_step == 2 and again.state.log_history == first.state.log_history
    assert again_events == first_events and [e.kind for e in again_events].count("step") == 2
    a, b = trained(first), trained(again)
    assert a.keys() == b.keys() and all(a[n].equal(b[n]) for n in a)
