"""Loading a model once per process: the device and dtype policy (:func:`generation_dtype`), the memory
check before a load, LoRA adapters on top, :func:`unload` and what a training step frees first."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import local_service, settings, system
from ..errors import LessonError, MemoryShortfall
from ..i18n import _
from .weights import DEFAULT_MODEL, DEFAULT_MODEL_ID, GGUF_NAME, cache_state, gguf_path, quiet_transformers, resolve


def generation_dtype(device: str | None = None) -> str:
    """The dtype replies are computed in: ``"bfloat16"`` or ``"float32"``.

    bf16 on a GPU, and on a CPU that computes bf16 natively (``avx512_bf16`` or AMX): there the
    default model's replies take half the memory of fp32 (its weights, and the attention cache of a
    batch) and about 0.6x the time; fp32 on other CPUs, where bf16 is emulated and slow. Replies in
    bf16 and fp32 differ a little (greedy decoding follows the larger logit, and rounding moves it
    now and then). ``LESSONLIB_GENERATION_DTYPE`` (``float32`` or ``bfloat16``) overrides.
    """
    forced = settings.get("LESSONLIB_GENERATION_DTYPE")
    if forced:
        return forced
    if (device or pick_device()).startswith("cuda"):
        return "bfloat16"
    return system.cpu_numeric_path()


def pick_device() -> str:
    """``cuda`` when a GPU is usable, else ``cpu``; ``LESSONLIB_DEVICE`` overrides."""
    forced = settings.get("LESSONLIB_DEVICE")
    if forced:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_adapter(adapter: str | os.PathLike[str]) -> Path:
    folder = Path(adapter).expanduser()
    if not folder.exists():
        raise LessonError(
            _("adapter folder {folder} does not exist").format(folder=folder),
            fix=_("pass the run folder printed by `lessonlib train local` (it holds adapter_config.json)"),
        )
    if not (folder / "adapter_config.json").is_file():
        nested = folder / "adapter"
        if (nested / "adapter_config.json").is_file():
            return nested
        raise LessonError(
            _("{folder} is not a LoRA adapter folder (no adapter_config.json)").format(folder=folder),
            fix=_("pass the folder written by a LoRA run (`lessonlib train local --method lora`)"),
        )
    return folder


@dataclass
class LoadedModel:
    """A model and its tokenizer, ready to generate."""

    model: Any  # transformers (or peft) model, in eval mode
    tokenizer: Any  # its tokenizer, with a chat template
    name: str  # what the learner asked for
    source: str  # folder or Hub id actually loaded
    device: str  # "cpu" or "cuda"
    adapter: str | None = None  # LoRA adapter folder, if any
    load_seconds: float = 0.0  # time spent loading
    extra: dict[str, Any] = field(default_factory=dict)


_LOADED: dict[tuple[str, str | None, str], LoadedModel] = {}


def load(name: str | None = None, *, adapter: str | os.PathLike[str] | None = None, device: str | None = None) -> LoadedModel:
    """Load (once per process) a model, optionally with a LoRA adapter on top.

    Loading is memoised: calling :func:`chat` in several notebook cells does not reload.
    """
    device = device or pick_device()
    dtype_name = generation_dtype(device)  # reads the CPU's features: once a load
    source = resolve(name, dtype=dtype_name)
    adapter_dir = str(check_adapter(adapter)) if adapter else None
    key = (source, adapter_dir, device)
    if key in _LOADED:
        return _LOADED[key]

    if not device.startswith("cuda"):  # a killed kernel loses more than a clear refusal: check the room first
        from ..system import memory_shortfall

        # the weights (mapped from their file), and 0.1 GB for the model's objects and first activations,
        # which free blocks of this process's heap hold without growing it (a kernel that trained has some)
        width = 2 if dtype_name == "bfloat16" else 4
        needed = (parameter_count(name) or 135e6) * width / 1e9 + max(0.0, 0.1 - system.heap_free_gb())
        short = memory_shortfall(needed)
        if short:  # what this process dropped (a finished training run's trainer) may still be held: collect it first
            system.give_back_memory()
            short = memory_shortfall(needed)
        if short and local_service.release_model():  # the local service may hold the model for replies
            system.give_back_memory()
            short = memory_shortfall(needed)
        if short:
            raise MemoryShortfall(_("loading the model {short}").format(short=short),
                                  fix=_("shut down the kernels of notebooks you have finished (Kernel > Shut Down All Kernels, "
                                        "or the Running panel), then run this cell again"))
    started = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, dtype_name)  # the default model's bf16 copy (source) loads without an fp32 pass
    local_only = settings.offline() and not Path(source).is_dir()
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=local_only)
    except OSError as exc:
        if Path(source).is_dir():
            raise LessonError(
                _("the model folder {source} cannot be loaded ({problem})").format(source=source, problem=str(exc).splitlines()[0]),
                fix=_("run `lessonlib model prepare --force` to rebuild the cache"),
            ) from None
        raise LessonError(
            _("model '{source}' is not cached locally and could not be downloaded").format(source=source),
            fix=_("connect to the network (and unset HF_HUB_OFFLINE), or use '{default}', which works offline").format(default=DEFAULT_MODEL),
        ) from None
    if adapter_dir:
        import warnings

        from peft import PeftModel

        with warnings.catch_warnings(), quiet_transformers():  # PEFT asks transformers a renamed question (a FutureWarning)
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(model, adapter_dir)
    model.to(device)
    model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    loaded = LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=str(name or DEFAULT_MODEL),
        source=source,
        device=device,
        adapter=adapter_dir,
        load_seconds=time.perf_counter() - started,
    )
    _LOADED[key] = loaded
    return loaded


def unload() -> None:
    """Forget every loaded model and token encoding and give the memory back to the system (a long
    notebook session, Binder's 2 GB). Both load again on their next use."""
    _LOADED.clear()
    system.give_back_memory()  # drops the token encodings too (lessonlib.tokens registers them)


def make_room_for_training() -> None:
    """Before a training step: drop this process's loaded models, ask the local service (if one runs)
    to give back the model it holds for replies, and hand the freed memory back to the system.
    Both reload on their next use; on Binder this is the difference between a run and a dead kernel."""
    unload()
    local_service.release_model()


def loaded() -> int:
    """How many models this process holds (see :func:`unload`)."""
    return len(_LOADED)


def info(name: str | None = None) -> dict[str, Any]:
    """Facts about a model without loading its weights (the default model's cache state too)."""
    result: dict[str, Any] = {"name": name or DEFAULT_MODEL}
    if name is None or str(name).lower() == DEFAULT_MODEL:
        state = cache_state()
        result.update(model=DEFAULT_MODEL_ID, cache=asdict(state),
                      weights=f"{GGUF_NAME} (4-bit Q4_1), dequantised to float32 once by `make setup`")
        try:
            result["gguf"] = str(gguf_path())
        except LessonError as exc:
            result["gguf"] = None
            result["problem"] = str(exc)
        folder = Path(state.path) if state.ready else None
    else:
        folder = Path(resolve(name))
        folder = folder if folder.is_dir() else None
        result["source"] = str(folder) if folder else name
    if folder is not None and (folder / "config.json").is_file():
        config = json.loads((folder / "config.json").read_text())
        result["architecture"] = (config.get("architectures") or ["?"])[0]
        result["context_length"] = config.get("max_position_embeddings")
        result["vocab_size"] = config.get("vocab_size")
        result["layers"] = config.get("num_hidden_layers")
        result["hidden_size"] = config.get("hidden_size")
        result["parameters_millions"] = _parameter_count(config)
    return result


def parameter_count(name: str | None = None) -> float | None:
    """Parameters of a model from its config alone (no weights loaded); ``None`` when unknown.

    Works for the default model, a model folder, and a Hub id whose config is cached or can be fetched.
    Memory plans scale with it.
    """
    try:
        millions = info(name).get("parameters_millions")
        source = resolve(name)
        if millions is None and not Path(source).is_dir():
            from transformers import AutoConfig

            try:  # the Hub cache first: no network when the model was used before
                config = AutoConfig.from_pretrained(source, local_files_only=True)
            except OSError:
                if settings.offline():
                    return None
                config = AutoConfig.from_pretrained(source)
            millions = _parameter_count(config.to_dict())
    except Exception:  # noqa: BLE001 - an estimate only (offline, unknown architecture): the caller falls back to a default
        return None
    return millions * 1e6 if millions else None


def _parameter_count(config: dict[str, Any]) -> float | None:
    """Parameters of a Llama-style decoder from its config (no weights needed), in millions."""
    try:
        h, layers, mlp = config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]
        heads, kv = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
        vocab = config["vocab_size"]
    except KeyError:
        return None
    head_dim = h // heads
    attention = h * h * 2 + 2 * h * kv * head_dim
    per_layer = attention + 3 * h * mlp + 2 * h
    embeddings = vocab * h * (1 if config.get("tie_word_embeddings", False) else 2)
    return round((layers * per_layer + embeddings + h) / 1e6, 1)
