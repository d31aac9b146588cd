"""Chat for the local service: the model lives in a reply worker, a child process that exits when released.

The service's own process never imports torch. The first request starts the **reply worker**
(``multiprocessing``'s *spawn*), which loads the model and answers every request that follows, one
at a time, over a pipe; :meth:`Chatter.release` (the service idle for a while, a training job about
to start where memory is short, a notebook about to train) ends it, and all of its memory goes back to the system, libraries
included; the next request starts it again in a few seconds. On Binder, where JupyterLab, every
kernel, the service and a training run share 2 GB, that is about 0.3 GB that would otherwise stay.

In the worker, :class:`Model` keeps one base model in memory; LoRA adapters are attached once and
switched per request. The first request for a tuned (or checkpoint) model wraps the base in a
``PeftModel``; each further adapter is added with ``load_adapter`` and chosen with ``set_adapter``; a
base-model request runs with the adapters disabled. So any number of tuned models cost a few MB
each, not a model each. Replies can be streamed token by token (``transformers.TextIteratorStreamer``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..child import Child
from ..errors import LessonError
from ..i18n import _

REPLY_WORKER = "lessonlib-replies"  # the reply worker's process name


class Model:
    """The reply worker's model: ``reply()`` and ``stream()`` for the base or any adapter folder, one at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: Any = None
        self.tokenizer: Any = None
        self.adapters: dict[str, str] = {}  # adapter folder -> PEFT adapter name
        self._generating: tuple[Any, Any] | None = None  # (model, adapter) models.generate last used

    def _ready(self, adapter: str | None) -> Any:
        """The model set up for ``adapter`` (``None``: the base), loading what is missing; a context for generation."""
        import contextlib

        from .. import models

        if models.loaded():  # one model in memory at a time: the one generate() used goes
            models.unload()
        if self.model is None:  # loaded as a kernel loads it (the same dtype, the same memory check), then kept here
            base = models.load(None)
            self.model, self.tokenizer = base.model, base.tokenizer
            models.unload()
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
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                  return_dict=True).to(self.model.device)

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
            if kind == "one":
                return [models.generate(conversations[0], **options)], None
            return models.generate_many_timed(conversations, **options)

    def reply(self, messages: list[dict[str, str]], *, adapter: str | None, max_tokens: int, temperature: float = 0.0,
              seed: int = 0) -> tuple[str, int, int]:
        """The reply, the prompt's tokens and the reply's tokens (its end-of-turn token included when it ended).

        A greedy reply (``temperature`` 0) is kept in the reply cache that :func:`lessonlib.models.generate` uses
        (:mod:`lessonlib.generation_cache`), with its token counts: asked again, it loads nothing."""
        import torch

        from .. import generation_cache
        from ..models.generation import cache_payload

        payload = cache_payload(None, adapter, max_tokens, "chat") if temperature <= 0 else None
        key = generation_cache.entry_key({**payload, "batch": [messages]}) if payload else None
        cached = generation_cache.lookup(key) if key else None
        if cached and len(cached[0]) == 3:
            reply, prompt, completion = cached[0]
            return reply, int(prompt), int(completion)
        with self.lock:
            context = self._ready(adapter)
            inputs = self._inputs(messages)
            started = time.perf_counter()
            with context, torch.inference_mode():
                output = self.model.generate(**inputs, **self._options(max_tokens, temperature, seed))
        new = output[0, inputs["input_ids"].shape[1]:]
        reply = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        prompt, completion = int(inputs["input_ids"].shape[1]), int(new.shape[0])
        if key:
            generation_cache.store(key, [reply, str(prompt), str(completion)], time.perf_counter() - started)
        return reply, prompt, completion

    def tokens(self, messages: list[dict[str, str]], reply: str) -> tuple[int, int]:
        """Tokens of the prompt and of a reply (its end-of-turn token included), for ``usage``."""
        return int(self._inputs(messages)["input_ids"].shape[1]), len(self.tokenizer(reply)["input_ids"]) + 1

    def threads(self) -> int:
        """The torch threads replies are generated on now."""
        import torch

        return torch.get_num_threads()

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
                    self.lock.release()

            threading.Thread(target=work, name="lessonlib-chat", daemon=True).start()
        except BaseException:
            self.lock.release()
            raise
        for piece in streamer:
            if piece:
                yield piece


# --------------------------------------------------------------------------------------------
# The service's side: a proxy to the reply worker
# --------------------------------------------------------------------------------------------


def _worker(channel: Any) -> None:
    """The reply worker's loop: one request at a time from the service; an error answers that request only."""
    from .. import local_service
    from ..models.weights import quiet_transformers

    local_service.mark_serving()
    model = Model()
    with quiet_transformers():  # the service's own process: no advisory warnings in its log
        while True:
            method, call = channel.receive()
            if method == "exit":
                return
            args, kwargs = call
            try:
                if method == "share_cores":  # 1 thread while a training job shares the cores; 0: every usable core
                    import torch

                    from ..system import usable_cores

                    torch.set_num_threads(args[0] or usable_cores())
                    channel.send("result", None)
                elif method == "stream":
                    for piece in model.stream(*args, **kwargs):
                        channel.send("piece", piece)
                    channel.send("done")
                else:
                    channel.send("result", getattr(model, method)(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - the service answers with the error rather than lose its worker
                channel.send_error(exc)


class Chatter:
    """The service's handle on the reply worker: the same ``reply``/``stream``/``generate``/``tokens``
    calls, run in the worker (started on the first request), one at a time; :meth:`release` ends it."""

    def __init__(self, training: Callable[[], bool] | None = None) -> None:
        self.lock = threading.Lock()
        self.worker: Child | None = None
        self.last_used = time.monotonic()
        #: Whether a training job runs now: then the worker generates on one thread. Two processes each
        #: with a thread per core make both crawl (OpenMP threads wait for each other's cores): the chat
        #: latency under load in benchmarks/results/class-load-2026-12.md, before and after.
        self.training = training
        self.threads: int | None = None  # what the worker was last told (None: a worker not yet told)

    def loaded(self) -> bool:
        """Whether a reply worker (and so a model) holds memory now."""
        return self.worker is not None and self.worker.alive()

    def idle_seconds(self) -> float:
        """Seconds since the last request ended (0 while one is running)."""
        return 0.0 if self.lock.locked() else time.monotonic() - self.last_used

    def release(self, *, wait: bool = True) -> bool:
        """End the reply worker: its model, its libraries and its heap go back to the system.

        False when a reply is being made and ``wait`` is False.
        """
        if not self.lock.acquire(blocking=wait):
            return False
        try:
            self._stop_worker()
        finally:
            self.lock.release()
        return True

    def _stop_worker(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()

    def _running_worker(self) -> Child:
        """The reply worker, started if none runs, on as many threads as it may use now (call with the lock held)."""
        if not self.loaded():
            self._stop_worker()
            self.worker = Child(_worker, name=REPLY_WORKER, ended=_("the reply worker ended unexpectedly (exit code {code})"))
            self.threads = None
        threads = 1 if self.training is not None and self.training() else 0
        if threads != self.threads:
            self.worker.send("share_cores", ((threads,), {}))
            self._receive()
            self.threads = threads
        return self.worker

    def _receive(self) -> tuple[str, Any]:
        assert self.worker is not None
        try:
            return self.worker.receive()
        except LessonError:
            if not self.worker.alive():  # it ended: the next request starts another
                self._stop_worker()
            raise

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            try:
                self._running_worker().send(method, (args, kwargs))
                return self._receive()[1]
            finally:
                self.last_used = time.monotonic()

    def reply(self, messages: list[dict[str, str]], **options: Any) -> tuple[str, int, int]:
        """The reply, the prompt's tokens and the reply's tokens (see :meth:`Model.reply`)."""
        return self._call("reply", messages, **options)

    def tokens(self, messages: list[dict[str, str]], reply: str) -> tuple[int, int]:
        """Tokens of the prompt and of a reply (see :meth:`Model.tokens`)."""
        return self._call("tokens", messages, reply)

    def generate(self, kind: str, conversations: list[list[dict[str, str]]], **options: Any) -> tuple[list[str], float | None]:
        """lessonlib's own generation for a notebook kernel (see :meth:`Model.generate`)."""
        return self._call("generate", kind, conversations, **options)

    def stream(self, messages: list[dict[str, str]], **options: Any) -> Iterator[str]:
        """The reply's text as the worker generates it, a piece at a time."""
        self.lock.acquire()
        try:
            self._running_worker().send("stream", ((messages,), options))
            while True:
                kind, piece = self._receive()  # an error in the worker ends the reply here, raised
                if kind == "done":
                    return
                try:
                    yield piece
                except GeneratorExit:  # the client left early: let the worker finish its reply first
                    self._drain()
                    raise
        finally:
            self.last_used = time.monotonic()
            self.lock.release()

    def _drain(self) -> None:
        """Read the rest of a streamed reply nobody wants (the worker answers one request at a time)."""
        try:
            while self._receive()[0] != "done":
                pass
        except Exception:  # noqa: BLE001 - a worker that failed on the way is started afresh next time
            self._stop_worker()
