"""Chat for the local service: one base model in memory, LoRA adapters attached once and switched per request.

The first request for a tuned (or checkpoint) model wraps the base in a ``PeftModel``; each further
adapter is added with ``load_adapter`` and chosen with ``set_adapter``; a base-model request runs
with the adapters disabled. So any number of tuned models cost a few MB each, not a model each.
Replies can be streamed token by token (``transformers.TextIteratorStreamer``).

The model is loaded on the first request and released (:meth:`Chatter.release`) when the service has been idle
for a while or a training job starts (the service shares Binder's 2 GB with JupyterLab, every kernel
and the training worker); the next request loads it again in a few seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator


class Chatter:
    """The service's model: ``reply()`` and ``stream()`` for the base or any adapter folder, one at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: Any = None
        self.tokenizer: Any = None
        self.adapters: dict[str, str] = {}  # adapter folder -> PEFT adapter name
        self.last_used = time.monotonic()
        self._generating: tuple[Any, Any] | None = None  # (model, adapter) models.generate last used

    def loaded(self) -> bool:
        from .. import models

        return self.model is not None or models.loaded() > 0

    def idle_seconds(self) -> float:
        """Seconds since the last request ended (0 while one is running)."""
        return 0.0 if self.lock.locked() else time.monotonic() - self.last_used

    def release(self, *, wait: bool = True) -> bool:
        """Drop the model and its adapters (the tokenizer, a few MB, stays) and give the memory back.

        False when a reply is being made and ``wait`` is False.
        """
        from .. import models, system

        if not self.lock.acquire(blocking=wait):
            return False
        try:
            if self.loaded():
                self.model = None
                self.adapters = {}
                models.unload()
                system.give_back_memory()
        finally:
            self.lock.release()
        return True

    def _ready(self, adapter: str | None) -> Any:
        """The model set up for ``adapter`` (``None``: the base), loading what is missing; a context for generation."""
        import contextlib

        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .. import models

        if models.loaded():  # one model in memory at a time: the one generate() used goes
            models.unload()
        if self.model is None:
            source = models.resolve(None)
            self.tokenizer = self.tokenizer or AutoTokenizer.from_pretrained(source)
            self.model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
        if adapter is None:
            return self.model.disable_adapter() if self.adapters else contextlib.nullcontext()
        if adapter not in self.adapters:
            import warnings

            from peft import PeftModel

            name = f"a{len(self.adapters)}"
            with warnings.catch_warnings():  # PEFT asks transformers a renamed question (a FutureWarning)
                warnings.simplefilter("ignore", FutureWarning)
                if not self.adapters:
                    self.model = PeftModel.from_pretrained(self.model, adapter, adapter_name=name).eval()
                else:
                    self.model.load_adapter(adapter, adapter_name=name)
            self.adapters[adapter] = name
        self.model.set_adapter(self.adapters[adapter])
        return contextlib.nullcontext()

    def _inputs(self, messages: list[dict[str, str]]) -> Any:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)

    def _options(self, max_tokens: int, temperature: float, seed: int) -> dict[str, Any]:
        import torch

        options: dict[str, Any] = {"max_new_tokens": max_tokens, "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id}
        if temperature > 0:
            torch.manual_seed(seed)
            options.update(do_sample=True, temperature=temperature)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return options

    def generate(self, kind: str, conversations: list[list[dict[str, str]]], **options: Any) -> tuple[list[str], float | None]:
        """lessonlib's own generation, for notebook kernels: :func:`lessonlib.models.generate` (``kind`` "one")
        or :func:`~lessonlib.models.generate_many_timed` run here, so the replies (and the reply cache) are
        those the kernel would have made itself. The chat model is dropped first: one model in memory."""
        from .. import models

        with self.lock:
            if self.model is not None:
                self.model, self.adapters = None, {}
            wanted = (options.get("model"), options.get("adapter"))
            if models.loaded() and self._generating != wanted:
                models.unload()  # one model at a time: base and tuned are loaded in turn
            self._generating = wanted
            try:
                if kind == "one":
                    return [models.generate(conversations[0], **options)], None
                return models.generate_many_timed(conversations, **options)
            finally:
                self.last_used = time.monotonic()

    def reply(self, messages: list[dict[str, str]], *, adapter: str | None, max_tokens: int, temperature: float = 0.0,
              seed: int = 0) -> tuple[str, int, int]:
        """The reply, the prompt's tokens and the reply's tokens (its end-of-turn token included when it ended)."""
        import torch

        with self.lock:
            context = self._ready(adapter)
            inputs = self._inputs(messages)
            with context, torch.inference_mode():
                output = self.model.generate(**inputs, **self._options(max_tokens, temperature, seed))
            self.last_used = time.monotonic()
        new = output[0, inputs["input_ids"].shape[1]:]
        return self.tokenizer.decode(new, skip_special_tokens=True).strip(), int(inputs["input_ids"].shape[1]), int(new.shape[0])

    def tokens(self, messages: list[dict[str, str]], reply: str) -> tuple[int, int]:
        """Tokens of the prompt and of a reply (its end-of-turn token included), for ``usage``."""
        return int(self._inputs(messages)["input_ids"].shape[1]), len(self.tokenizer(reply)["input_ids"]) + 1

    def stream(self, messages: list[dict[str, str]], *, adapter: str | None, max_tokens: int, temperature: float = 0.0,
               seed: int = 0) -> Iterator[str]:
        """The reply's text as it is generated, a piece at a time."""
        import torch
        from transformers import TextIteratorStreamer

        self.lock.acquire()
        try:
            context = self._ready(adapter)
            inputs = self._inputs(messages)
            streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)

            def work() -> None:
                try:
                    with context, torch.inference_mode():
                        self.model.generate(**inputs, **self._options(max_tokens, temperature, seed), streamer=streamer)
                finally:
                    self.last_used = time.monotonic()
                    self.lock.release()

            threading.Thread(target=work, name="lessonlib-chat", daemon=True).start()
        except BaseException:
            self.lock.release()
            raise
        for piece in streamer:
            if piece:
                yield piece
