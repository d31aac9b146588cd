"""Notebook 04 · fine-tune locally: its exercises and their checks."""

from __future__ import annotations

from typing import Any

from ..i18n import N_, _
from .core import Hint, close_to, exercise


@exercise("04.1", 1, N_("How much of the data does a run see?"), answer="epochs", solution='''
max_steps, batch_size, examples = 20, 2, 200
epochs = max_steps * batch_size / examples
''', wrong='epochs = 20 * 2')
def _check_epochs(epochs: Any) -> str:
    if close_to(epochs, 0.2, 0.005):
        return _("0.2 of an epoch: 40 of the 200 examples. Enough to learn a format, far from learning the task.")
    if close_to(epochs, 40, 0):
        raise Hint(_("40 is the number of examples the run sees. An epoch is one pass over all 200 training examples: "
                     "divide by 200."))
    raise Hint(_("steps x examples per step gives the examples seen; divide by the 200 training examples."))


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
    per_device_train_batch_size=4,      # 50 steps of 4 examples
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
    if args.per_device_train_batch_size != 4:
        raise Hint(_("use 4 examples per step: `per_device_train_batch_size=4`."))
    if args.max_steps > 0 and args.max_steps * 4 != 200:
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
