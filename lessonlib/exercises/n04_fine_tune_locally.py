"""Notebook 04 · fine-tune locally: its exercises and their checks."""

from __future__ import annotations

from typing import Any

from ..i18n import N_, _
from .core import Hint, close_to, exercise, train_path

#: Exercise 04.1: how many epochs the tutorial trains (its table), section 4's examples a step and its steps.
_EPOCHS_04, _PER_STEP_04, _RUN_STEPS_04 = 3, 2, 20


@exercise("04.1", 1, N_("Three epochs, in steps"), answer="steps", solution='''
epochs, examples, examples_per_step = 3, 200, 2   # the tutorial's epochs; len(dataset); section 4's step
steps = epochs * examples / examples_per_step     # examples seen, divided by the examples a step takes
''', wrong='steps = 3 * 200')
def _check_steps(steps: Any) -> str:
    from .. import data

    examples = len(data.read_examples(train_path()))
    seen = _EPOCHS_04 * examples
    expected = seen / _PER_STEP_04
    if close_to(steps, expected, 0.5):
        return _("{steps:g} steps: {seen} examples seen, {per_step} a step. That is {times:g} times section 5's {run} steps: "
                 "multiply its time. On a GPU, bigger steps make far fewer.").format(
            steps=expected, seen=seen, per_step=_PER_STEP_04, times=expected / _RUN_STEPS_04, run=_RUN_STEPS_04)
    if close_to(steps, seen, 0):
        raise Hint(_("{seen} is the number of examples three epochs show the model. A step takes {per_step} of them: "
                     "how many steps is that?").format(seen=seen, per_step=_PER_STEP_04))
    if close_to(steps, examples / _PER_STEP_04, 0):
        raise Hint(_("that is one epoch, one pass over the {examples} examples: the tutorial trains three.").format(examples=examples))
    raise Hint(_("three epochs show the model each of the {examples} training examples three times; divide the examples "
                 "seen by the examples a step takes.").format(examples=examples))


@exercise("04.2", 2, N_("A bigger adapter"), answer="bigger_lora", solution='''
from peft import LoraConfig

bigger_lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
''', wrong='''
from peft import LoraConfig

bigger_lora = LoraConfig(r=16, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
''')
def _check_lora(lora: Any) -> str:
    for name in ("r", "lora_alpha", "target_modules", "task_type"):
        if not hasattr(lora, name):
            raise Hint(_("build it with peft's `LoraConfig(...)`, as in section 3."))
    if lora.r != 16:
        raise Hint(_("the rank `r` should be 16 (it is {r}).").format(r=lora.r))
    if lora.lora_alpha != 2 * lora.r:
        raise Hint(_("keep `lora_alpha` at twice the rank: it is {lora_alpha} for a rank of {r}.").format(lora_alpha=lora.lora_alpha, r=lora.r))
    if lora.target_modules != "all-linear" and set(lora.target_modules or ()) != {"q_proj", "k_proj", "v_proj", "o_proj",
                                                                                "gate_proj", "up_proj", "down_proj"}:
        raise Hint(_('put an adapter on every linear layer: `target_modules="all-linear"`.'))
    if str(getattr(lora.task_type, "value", lora.task_type)) != "CAUSAL_LM":
        raise Hint(_('this is a causal language model: `task_type="CAUSAL_LM"`.'))
    return _("rank 16 on every linear layer: about 8 times the trainable weights of section 3's adapter, and "
             "about twice the compute per step.")


@exercise("04.3", 2, N_("One whole epoch, with checkpoints"), answer="epoch_args", solution='''
from trl import SFTConfig

epoch_args = SFTConfig(
    output_dir="runs/04-one-epoch",
    num_train_epochs=1,                 # one pass over the 200 examples
    max_steps=-1,                       # let the epochs decide (a positive max_steps would win)
    per_device_train_batch_size=4,      # 4 examples a step (or 2 a pass with gradient_accumulation_steps=2): 50 steps
    save_strategy="steps",
    save_steps=10,                      # a checkpoint every 10 steps
    save_total_limit=2,                 # keep the last two
    learning_rate=2e-3,
    assistant_only_loss=True,
    use_cpu=True,
    report_to="none",
)
''', wrong='''
from trl import SFTConfig

epoch_args = SFTConfig(output_dir="runs/04-one-epoch", max_steps=12, per_device_train_batch_size=4, report_to="none", use_cpu=True)
''')
def _check_sft_config(args: Any) -> str:
    if not hasattr(args, "per_device_train_batch_size"):
        raise Hint(_("build it with TRL's `SFTConfig(...)`, as in section 4."))
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps  # examples a pass x passes a step
    if per_step != 4:
        raise Hint(_("a step should take 4 examples: `per_device_train_batch_size` × `gradient_accumulation_steps` makes "
                     "{per_step} here ({per_pass} × {passes}).").format(per_step=per_step, per_pass=args.per_device_train_batch_size,
                                                                       passes=args.gradient_accumulation_steps))
    if args.max_steps > 0 and args.max_steps * per_step != 200:
        raise Hint(_("max_steps={max_steps} wins over the epochs: leave it at -1 and set `num_train_epochs=1` (or make "
                     "the steps cover exactly the 200 examples).").format(max_steps=args.max_steps))
    if args.max_steps <= 0 and args.num_train_epochs != 1:
        raise Hint(_("one pass over the data: `num_train_epochs=1`."))
    if str(getattr(args.save_strategy, "value", args.save_strategy)) != "steps" or args.save_steps != 10:
        raise Hint(_('save every 10 steps: `save_strategy="steps"` and `save_steps=10`.'))
    if args.save_total_limit != 2:
        raise Hint(_("keep only the last two checkpoints: `save_total_limit=2`."))
    if not args.assistant_only_loss:
        raise Hint(_("learn the replies only, as in section 4: `assistant_only_loss=True`."))
    return _("50 steps of 4 examples, a checkpoint every 10 and the last two kept. "
             "`trainer.train(resume_from_checkpoint=True)` goes on from the latest.")
