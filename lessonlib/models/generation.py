"""Replies: :func:`generate` one, :func:`generate_many` in left-padded batches, greedy replies kept in
:mod:`lessonlib.generation_cache`; in a notebook kernel the local service makes them
(:func:`lessonlib.local_service.backend`)."""

from __future__ import annotations

import os
import time
from typing import Any

from .. import generation_cache, local_service
from ..errors import LessonError
from ..i18n import _
from .loading import LoadedModel, check_adapter, generation_dtype, load, pick_device
from .weights import quiet_transformers, resolve


def generates_in_service() -> bool:
    """Whether replies are made by the local service rather than in this process
    (:func:`lessonlib.local_service.backend` decides; the replies are the same: the service runs
    these functions)."""
    return local_service.backend("replies") == "service"


Message = dict[str, str]


def cache_payload(model: str | None, adapter: str | os.PathLike[str] | None, max_new_tokens: int, kind: str) -> dict[str, Any] | None:
    """What a greedy reply depends on besides its prompt, for :mod:`lessonlib.generation_cache`;
    ``None`` when replies of this model are not cached (switched off, or a Hub id)."""
    if not generation_cache.enabled():
        return None
    fingerprint = generation_cache.model_fingerprint(resolve(model))
    if fingerprint is None:
        return None
    return {
        "model": fingerprint,
        "adapter": generation_cache.adapter_fingerprint(check_adapter(adapter)) if adapter else None,
        "device": pick_device(),
        "dtype": generation_dtype(),
        "max_new_tokens": max_new_tokens,
        "kind": kind,
    }


def generate(
    messages: list[Message],
    *,
    model: str | None = None,
    adapter: str | os.PathLike[str] | None = None,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    seed: int = 0,
) -> str:
    """Reply to a list of chat messages (``[{"role": ..., "content": ...}]``).

    ``temperature=0`` (default) is greedy decoding: the same text every time, so it is also kept in
    :mod:`lessonlib.generation_cache` and the second request does not generate (or load) anything.
    """
    if max_new_tokens < 1:
        raise LessonError(_("max_new_tokens must be at least 1 (got {max_new_tokens})").format(max_new_tokens=max_new_tokens))
    if generates_in_service():
        return local_service.generate("one", [messages], model=model, adapter=adapter, max_new_tokens=max_new_tokens,
                           temperature=temperature, seed=seed)[0][0]
    payload = cache_payload(model, adapter, max_new_tokens, "one") if temperature <= 0 else None
    key = generation_cache.entry_key({**payload, "batch": [messages]}) if payload else None
    cached = generation_cache.lookup(key) if key else None
    if cached:
        return cached[0][0]
    lm = load(model, adapter=adapter)
    started = time.perf_counter()  # generation only, as generate_many_timed counts it
    import torch

    inputs = lm.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    ).to(lm.device)
    options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": lm.tokenizer.pad_token_id}
    if temperature > 0:
        torch.manual_seed(seed)
        options.update(do_sample=True, temperature=temperature)
    else:
        options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    with torch.inference_mode(), quiet_transformers():
        output = lm.model.generate(**inputs, **options)
    new_tokens = output[0, inputs["input_ids"].shape[1]:]
    reply = lm.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
    if key:
        generation_cache.store(key, [reply], time.perf_counter() - started)
    return reply


def generate_many(
    conversations: list[list[Message]],
    *,
    model: str | None = None,
    adapter: str | os.PathLike[str] | None = None,
    max_new_tokens: int = 128,
    batch_size: int = 8,
) -> list[str]:
    """Greedy replies to many conversations, in left-padded batches: faster than one by one, since each step of
    generation works on the whole batch. Batches already answered on this machine come from :mod:`lessonlib.generation_cache`."""
    return generate_many_timed(conversations, model=model, adapter=adapter, max_new_tokens=max_new_tokens, batch_size=batch_size)[0]


def generate_many_timed(
    conversations: list[list[Message]],
    *,
    model: str | None = None,
    adapter: str | os.PathLike[str] | None = None,
    max_new_tokens: int = 128,
    batch_size: int = 8,
) -> tuple[list[str], float]:
    """:func:`generate_many`, and the seconds generating took (as first measured, for cached batches).

    Loading the model is not counted, so latency figures compare strategies, not cold starts.
    """
    if not conversations:
        return [], 0.0
    if generates_in_service():
        return local_service.generate("many", conversations, model=model, adapter=adapter, max_new_tokens=max_new_tokens, batch_size=batch_size)
    payload = cache_payload(model, adapter, max_new_tokens, f"batch-{batch_size}")
    replies: list[str] = []
    seconds = 0.0
    lm: LoadedModel | None = None
    for chunk in batches(conversations, batch_size):
        key = generation_cache.entry_key({**payload, "batch": chunk}) if payload else None
        cached = generation_cache.lookup(key) if key else None
        if cached and len(cached[0]) == len(chunk):
            replies += cached[0]
            seconds += cached[1]
            continue
        lm = lm or load(model, adapter=adapter)
        started = time.perf_counter()
        answers = _generate_batch(lm, chunk, max_new_tokens)
        took = time.perf_counter() - started
        if key:
            generation_cache.store(key, answers, took)
        replies += answers
        seconds += took
    return replies, seconds


#: The most prompt text one batch of :func:`generate_many` holds, padded (the batch's longest prompt, in
#: characters, times its size): about 2,000 tokens. A batch holds the attention cache of every row;
#: long few-shot prompts in batches of 8 took 0.7 GB beyond the model itself in fp32.
BATCH_CHARACTERS = 6000


def batches(conversations: list[list[Message]], batch_size: int = 8, budget: int = BATCH_CHARACTERS) -> list[list[list[Message]]]:
    """Consecutive batches of at most ``batch_size`` conversations and ``budget`` padded characters.

    A conversation longer than the budget makes a batch of its own.

    >>> sizes = [100, 100, 3000, 3000, 100]
    >>> [len(b) for b in batches([[{"role": "user", "content": "x" * n}] for n in sizes], 8, 6000)]
    [2, 2, 1]
    """
    result: list[list[list[Message]]] = []
    longest = 0
    for conversation in conversations:
        length = sum(len(str(m.get("content", ""))) for m in conversation)
        if result and len(result[-1]) < batch_size and (len(result[-1]) + 1) * max(longest, length) <= budget:
            result[-1].append(conversation)
            longest = max(longest, length)
        else:
            result.append([conversation])
            longest = length
    return result


def _generate_batch(lm: LoadedModel, chunk: list[list[Message]], max_new_tokens: int) -> list[str]:
    """Greedy replies to one left-padded batch."""
    import torch

    tokenizer = lm.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        inputs = tokenizer.apply_chat_template(
            chunk, add_generation_prompt=True, return_tensors="pt", return_dict=True, padding=True
        ).to(lm.device)
        with torch.inference_mode(), quiet_transformers():
            output = lm.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                       top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
    finally:
        tokenizer.padding_side = side
    width = inputs["input_ids"].shape[1]
    return [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in output]


def replies_from(model: Any, tokenizer: Any, conversations: list[list[Message]], *, max_new_tokens: int = 128,
                 batch_size: int = 8) -> list[str]:
    """Greedy replies from a model you loaded yourself (``from_pretrained``, a ``PeftModel``), batched as
    :func:`generate_many` batches them; nothing is loaded and nothing cached. A kernel that holds a
    model already answers with it instead of loading a second one.

    >>> replies_from(None, None, [])
    []
    """
    if not conversations:
        return []
    lm = LoadedModel(model=model, tokenizer=tokenizer, name="yours", source="yours", device=str(model.device))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return [reply for chunk in batches(conversations, batch_size) for reply in _generate_batch(lm, chunk, max_new_tokens)]


def chat(
    prompt: str,
    *,
    system: str | None = None,
    model: str | None = None,
    adapter: str | os.PathLike[str] | None = None,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
) -> str:
    """One reply from the local model to ``prompt`` (deterministic unless ``temperature > 0``)."""
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return generate(messages, model=model, adapter=adapter, max_new_tokens=max_new_tokens, temperature=temperature)
