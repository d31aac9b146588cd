"""Optional speed and memory measures for local training: everything that reaches past a public API.

The recipe (:mod:`lessonlib.train.recipe`) uses public APIs only and trains correctly on its own.
Each measure here makes it faster or smaller on some machines by relying on something a library
does not promise to keep: a private attribute, a method replaced on a model's modules, glibc.
So each one is a :class:`Measure` that names what it relies on and the library versions it was
measured with; :func:`check` says why it cannot be used here (something is missing, or a library
has another version), and the machine plan (:mod:`lessonlib.train.machine`) then skips it with
that reason. :func:`applied` switches the plan's measures on around training and undoes all of
their process-wide changes on the way out, after an exception or a Stop too. Changes to the
trainer's own model (weights stored narrower, methods replaced on its modules) stay with that
model, which belongs to the run. ``LESSONLIB_MEASURES=off`` (or ``RunConfig(measures="off")``)
trains with the recipe alone.

What each one buys, measured, is in ``benchmarks/results/training-plan-2026-11.md``:

* ``compact_loss_head``: TRL's loss head scores only the reply tokens on a CPU, as it does on GPUs.
* ``attention_by_example``: padding-free rows attend one example at a time (SDPA ``is_causal``, key/value heads
  read without copies) instead of through one mask over the row.
* ``lean_fp32``: frozen weights stored in bf16 and widened at each use, SwiGLU keeping two tensors instead of three:
  less memory for a little time, so that the default budget trains without activation checkpointing.
* ``heap_trim``: free heap pages handed back every 10 layers of a training forward pass (glibc before 2.38 keeps
  freed tensor memory resident otherwise).
* ``malloc_settings``: glibc returns freed blocks over 4 MB at once, so a lean or bf16-weight run's memory stays
  flat. Process-wide and not undoable: only where the run owns its process (the command line, a training worker),
  never in a notebook's kernel.
* ``onednn_cache``: oneDNN, which computes torch's bf16 matrix products on a CPU, keeps the kernels it compiled for
  64 shapes instead of 1,024. Set through oneDNN's documented ``ONEDNN_PRIMITIVE_CACHE_CAPACITY``, which oneDNN
  reads once, at its first kernel: only where the run owns its process, and not where that variable is set already.

>>> check("no_such_measure")
'unknown measure'
>>> sorted(MEASURES) == sorted(ORDER)
True
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..i18n import N_, _


@dataclass(frozen=True)
class Measure:
    """One optional measure: what it buys, what it relies on, what it was measured with."""

    name: str  # the plan's name for it
    buys: str  # one line: what it buys, and where that was measured
    relies_on: tuple[str, ...]  # dotted names that must exist ("glibc.NAME": a C library function)
    measured_with: tuple[tuple[str, str], ...]  # (distribution, "major.minor") it was measured with


MEASURES = {m.name: m for m in (
    Measure("compact_loss_head", N_("loss head on reply tokens only on a CPU: ~1.4x faster at the loss, ~0.3 GB less"),
            ("trl.trainer.utils._use_triton", "trl.trainer.utils._ChunkedLogProbFunction"), (("trl", "1.16"),)),
    Measure("attention_by_example", N_("padding-free rows attend one example at a time: ~7% more tokens/s"),
            ("transformers.AttentionInterface", "transformers.integrations.sdpa_attention.sdpa_attention_forward",
             "transformers.PreTrainedModel.set_attn_implementation"), (("transformers", "5.24"), ("trl", "1.16"))),
    Measure("lean_fp32", N_("frozen weights in bf16, widened at use; lean SwiGLU: ~0.3 GB less than plain fp32, ~5-10% slower"),
            ("torch.ops.aten.silu_backward", "torch.nn.Linear", "transformers.PreTrainedModel.get_output_embeddings"),
            (("torch", "2.13"), ("transformers", "5.24"))),
    Measure("heap_trim", N_("heap handed back every 10 layers of a forward pass: ~0.25 GB lower peak, ~1-6% slower"),
            ("glibc.malloc_trim", "transformers.modeling_layers.GradientCheckpointingLayer"), (("transformers", "5.24"),)),
    Measure("malloc_settings", N_("freed blocks over 4 MB returned at once: flat memory (~0.1 GB) for lean and bf16-weight runs"),
            ("glibc.mallopt",), ()),
    Measure("onednn_cache", N_("oneDNN keeps its compiled bf16 kernels for 64 shapes, not 1,024: ~0.1 GB less, as fast"),
            ("torch.backends.mkldnn.is_available",), ()),
)}
#: The order in which :func:`applied` switches them on.
ORDER = ("malloc_settings", "onednn_cache", "lean_fp32", "heap_trim", "compact_loss_head", "attention_by_example")
#: oneDNN's variable for the number of compiled kernels it keeps (its default: 1,024), and the measure's value.
ONEDNN_CACHE_VARIABLE, ONEDNN_CACHE_SHAPES = "ONEDNN_PRIMITIVE_CACHE_CAPACITY", 64


def enabled_by_environment() -> bool:
    """False when ``LESSONLIB_MEASURES`` is ``off`` (or ``0``): train with the public recipe alone."""
    from .. import settings

    return settings.get("LESSONLIB_MEASURES")


def _resolve(dotted: str) -> Any:
    """The object a dotted name names (importing modules as needed); raises LookupError when missing."""
    if dotted.startswith("glibc."):
        from ..system import glibc

        libc = glibc()
        if libc is None:
            raise LookupError("glibc (Linux) is not the C library here")
        try:
            return getattr(libc, dotted.split(".", 1)[1])
        except AttributeError:
            raise LookupError(f"the C library has no {dotted.split('.', 1)[1]}") from None
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            try:
                obj = getattr(obj, attr)
            except (AttributeError, RuntimeError):
                raise LookupError(f"{dotted} is missing") from None
        return obj
    raise LookupError(f"{dotted} is missing")


def check(name: str) -> str | None:
    """Why the measure ``name`` cannot be used here, or ``None`` when it can.

    It cannot when something it relies on is missing, or when a library it reaches into has another
    version than the one it was measured with (the private parts may have changed).
    """
    from ..system import package_version

    measure = MEASURES.get(name)
    if measure is None:
        return _("unknown measure")
    for package, version in measure.measured_with:
        installed = package_version(package)
        if installed is None or ".".join(installed.split("+")[0].split(".")[:2]) != version:
            return (_("measured with {package} {version}, and {package} {installed} is here").format(package=package, version=version, installed=installed)
                    if installed else _("measured with {package} {version}, and {package} is not installed here").format(package=package, version=version))
    for dotted in measure.relies_on:
        try:
            _resolve(dotted)
        except LookupError as exc:
            return str(exc)
    if name == "onednn_cache":
        if not torch.backends.mkldnn.is_available():
            return _("this torch is built without oneDNN")
        if ONEDNN_CACHE_VARIABLE in os.environ:
            return _("{variable} is set already ({value})").format(variable=ONEDNN_CACHE_VARIABLE, value=os.environ[ONEDNN_CACHE_VARIABLE])
    return None


# ---- lean_fp32: frozen weights stored in bf16 and widened at each use; SwiGLU keeping two tensors ---------------------
# A frozen nn.Linear (every one in the decoder layers but the LoRA adapters) keeps its weight in bf16 and computes in
# fp32: the weight is widened just before its matrix product (into a reused buffer), in the forward pass and again for
# the input gradient, and only the bf16 weight is kept for backward. Rounding the frozen weights to bf16 moves the loss
# in the third digit (they came from a 4-bit GGUF file anyway); the tied embedding / output head stays fp32.
# ``tests/test_train.py`` checks losses and gradients against the unmodified model with the same rounded weights.

_scratch = threading.local()


def _widened(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``weight`` widened to ``dtype`` in a buffer reused for every weight of that shape (one per thread).

    Widening into fresh memory at each of the ~400 uses a step churned the heap: freed 0.4-3.5 MB
    blocks between the activations being kept, which left the resident size ~0.1 GB higher.
    """
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = {}
    key = (tuple(weight.shape), dtype, weight.device)
    buffer = buffers.get(key)
    if buffer is None:
        buffer = buffers[key] = torch.empty(weight.shape, dtype=dtype, device=weight.device)
    return buffer.copy_(weight)


def release_scratch() -> None:
    """Free this thread's widening buffers (a few MB; the runner calls it after training)."""
    _scratch.buffers = {}


class _WidenedLinear(torch.autograd.Function):
    """``x @ weight.T (+ bias)`` in x's dtype with a narrow frozen weight: only the narrow weight is saved."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(weight)
        return F.linear(x, _widened(weight, x.dtype), None if bias is None else bias.to(x.dtype))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        (weight,) = ctx.saved_tensors
        return (grad @ _widened(weight, grad.dtype) if ctx.needs_input_grad[0] else None), None, None


def _widened_forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if x.dtype == self.weight.dtype:  # e.g. under bf16 autocast: nothing to widen
        return F.linear(x, self.weight, self.bias)
    return _WidenedLinear.apply(x, self.weight, self.bias)


def store_frozen_in_bf16(model: torch.nn.Module) -> int:
    """Store every frozen ``nn.Linear`` weight of ``model`` in bf16, computing in the input's dtype.

    Skips trainable layers (LoRA adapters, full fine-tuning) and weights shared with another module
    (a tied output head). Returns how many layers were changed. Call it before the optimiser is made.
    """
    counts: dict[int, int] = {}
    for _name, module in model.named_modules(remove_duplicate=False):
        for param in module.parameters(recurse=False):
            counts[id(param)] = counts.get(id(param), 0) + 1
    try:  # the output head is read directly by TRL's fused loss head: it keeps its dtype
        head = model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        head = None
    changed = 0
    release = _file_page_releaser()
    for module in model.modules():
        if type(module) is not torch.nn.Linear or module.weight.requires_grad or module.weight.dtype != torch.float32:
            continue
        if module is head:
            continue
        if counts.get(id(module.weight), 0) > 1 or (module.bias is not None and module.bias.requires_grad):
            continue  # tied to another module, or a trainable bias: leave as is
        wide = module.weight.data
        module.weight.data = wide.to(torch.bfloat16)
        release(wide)
        module.forward = types.MethodType(_widened_forward, module)
        changed += 1
    if changed:
        # transformers maps the safetensors file into memory and the weights are views of it: once
        # read (by the conversion above) its pages count as resident. Give the other weights memory
        # of their own too, so that nothing refers to the mapping any more and it is closed.
        for param in model.parameters():
            if param.dtype != torch.bfloat16:
                param.data = param.data.clone()
        import gc

        gc.collect()
    return changed


def _file_page_releaser() -> Any:
    """A function that drops a tensor's pages from this process's resident memory when the tensor is a
    view of a *file* mapping (transformers maps safetensors files), and does nothing otherwise.

    Converting the weights reads every page of the fp32 file, and all of them stayed resident until
    the last weight was converted: the set-up of a lean run peaked at ~1.39 GB, above its training
    steps. ``madvise(MADV_DONTNEED)`` on the whole pages inside a converted weight gives them back at
    once (reading them again would fault them in from the file: nothing is lost). Anonymous memory is
    never touched: only ranges that ``/proc/self/maps`` lists with a file name qualify. Linux/glibc only.
    """
    import ctypes
    import mmap

    from ..system import glibc

    libc = glibc()
    try:
        with open("/proc/self/maps", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        madvise = libc.madvise if libc is not None else None
    except (OSError, AttributeError):
        madvise = None
    if madvise is None:
        return lambda tensor: None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    files = []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[4] != "0" and fields[5].startswith("/"):  # inode and path: a file
            start, end = (int(x, 16) for x in fields[0].split("-"))
            files.append((start, end))
    page = mmap.PAGESIZE

    def release(tensor: torch.Tensor) -> None:
        if tensor.device.type != "cpu" or not tensor.is_contiguous():
            return
        first = tensor.data_ptr()
        last = first + tensor.numel() * tensor.element_size()
        if not any(start <= first and last <= end for start, end in files):
            return
        begin, stop = -(-first // page) * page, last // page * page  # whole pages inside the tensor only
        if stop > begin:
            madvise(begin, stop - begin, 4)  # MADV_DONTNEED

    return release


class SwiGLU(torch.autograd.Function):
    """``silu(gate) * up`` keeping only ``gate`` and ``up`` for the backward pass.

    >>> gate, up = torch.randn(3, 5, requires_grad=True), torch.randn(3, 5, requires_grad=True)
    >>> SwiGLU.apply(gate, up).sum().backward()
    >>> g1, u1 = gate.grad.clone(), up.grad.clone(); gate.grad = up.grad = None
    >>> (F.silu(gate) * up).sum().backward()
    >>> bool(torch.allclose(g1, gate.grad, atol=1e-6) and torch.allclose(u1, up.grad, atol=1e-6))
    True
    """

    @staticmethod
    def forward(ctx: Any, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(gate, up)
        return F.silu(gate) * up

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gate, up = ctx.saved_tensors
        grad_gate = torch.ops.aten.silu_backward(grad * up, gate)  # the fused kernel F.silu's own backward uses
        return grad_gate, grad * F.silu(gate)


def _swiglu_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    return self.down_proj(SwiGLU.apply(self.gate_proj(x), self.up_proj(x)))


def lean_swiglu(model: torch.nn.Module) -> int:
    """Make every ``down(silu(gate(x)) * up(x))`` MLP of ``model`` use :class:`SwiGLU`; returns how many."""
    changed = 0
    for module in model.modules():
        act = getattr(module, "act_fn", None)
        if all(hasattr(module, name) for name in ("gate_proj", "up_proj", "down_proj")) and (
            isinstance(act, torch.nn.SiLU) or type(act).__name__ == "SiLUActivation"
        ):
            module.forward = types.MethodType(_swiglu_forward, module)
            changed += 1
    return changed


def make_lean(model: torch.nn.Module) -> tuple[int, int]:
    """:func:`store_frozen_in_bf16` and :func:`lean_swiglu` on ``model`` (before its optimiser is made).

    Returns how many linear layers and MLPs were changed. The runner and the benchmark both call it.
    """
    return store_frozen_in_bf16(model), lean_swiglu(model)


# ---- attention_by_example: SDPA one example at a time in padding-free rows ------------------------------------------

def example_segments(cu_seq_lens: list[int]) -> list[tuple[int, int]]:
    """Each example's ``(start, end)`` in a padding-free row, from TRL's ``cu_seq_lens``.

    The padding at the end of a row (to a multiple of 32) comes as 1-token "examples": one segment.

    >>> example_segments([0, 120, 310, 311, 312, 313])
    [(0, 120), (120, 310), (310, 313)]
    """
    segments: list[list[int]] = []
    padding = False
    for start, end in itertools.pairwise(cu_seq_lens):
        if end - start == 1 and padding:
            segments[-1][1] = end
        else:
            segments.append([start, end])
            padding = end - start == 1
    return [(start, end) for start, end in segments]


def per_example_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                          is_causal: bool | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """SDPA attention that runs each example of a padding-free row on its own, causally.

    With one mask over the whole row, the CPU kernel computes every query against every key, ~4x the
    useful work for two examples; per example with ``is_causal`` it skips what the mask would hide.
    Anything else (padded batches, generation) goes to transformers' own SDPA function.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cu = kwargs.get("cu_seq_lens_q")
    if cu is None or query.shape[0] != 1 or query.shape[2] != key.shape[2] or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    gqa = query.shape[1] != key.shape[1]
    outputs = [F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], dropout_p=dropout,
                                              scale=scaling, is_causal=True, enable_gqa=gqa)
               for a, b in example_segments(cu.tolist() if hasattr(cu, "tolist") else [int(x) for x in cu])]
    output = torch.cat(outputs, dim=2) if len(outputs) > 1 else outputs[0]
    return output.transpose(1, 2).contiguous(), None




# ---- switching the measures on and off -------------------------------------------------------------------------------

ATTENTION_NAME = "lessonlib_by_example"


@contextlib.contextmanager
def _attention_by_example(model: Any) -> Iterator[None]:
    """The model's attention is :func:`per_example_attention`, registered under its own name, while the block runs."""
    from transformers import AttentionInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    assert isinstance(ALL_ATTENTION_FUNCTIONS, AttentionInterface)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    before = base.config._attn_implementation
    ALL_ATTENTION_FUNCTIONS[ATTENTION_NAME] = per_example_attention  # this mapping's own entry, not the library-wide table
    try:
        base.set_attn_implementation(ATTENTION_NAME)
        yield
    finally:
        base.set_attn_implementation(before)
        del ALL_ATTENTION_FUNCTIONS[ATTENTION_NAME]


@contextlib.contextmanager
def _compact_loss_head() -> Iterator[None]:
    """TRL 1.16's fused loss head keeps only labelled positions on Triton devices (``_use_triton``); on CPUs too
    while the block runs. Off-GPU TRL scores every position because a varying number of positions would
    recompile compiled graphs, which eager CPU training does not have."""
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    trl_utils._use_triton = lambda device: device.type == "cpu" or original(device)
    try:
        yield
    finally:
        trl_utils._use_triton = original


@contextlib.contextmanager
def _lean_fp32(model: Any) -> Iterator[None]:
    make_lean(model)
    try:
        yield
    finally:
        release_scratch()


def trim_heap_in_forward(model: Any, every: int = 10) -> list[Any]:
    """Hand the heap's free pages back to the system every ``every`` decoder layers of a training
    forward pass (``malloc_trim``); returns the hook handles (``handle.remove()`` undoes it).

    Why: torch allocates tensors with ``posix_memalign``, and glibc before 2.38 (Debian 12, Ubuntu
    22.04: Binder) serves each such request with a free chunk ~100 bytes *bigger* than the one a freed
    tensor of the same size leaves behind. So the temporaries of one layer are not reused by the
    next: at the end of the forward pass of a 448-token step, 0.26 GB of the heap was free but still
    resident, on top of 0.36 GB of real activations. Trimming every 10 layers (3 times a step,
    forward passes with gradients only) brought the default run's peak from ~1.6 to ~1.38 GB.
    Linux/glibc only; [] elsewhere.
    """
    from transformers.modeling_layers import GradientCheckpointingLayer

    from ..system import glibc

    libc = glibc()
    if libc is None or every < 1:
        return []

    def trim(module: Any, inputs: Any, output: Any) -> None:
        if torch.is_grad_enabled():  # training, not evaluation or generation
            libc.malloc_trim(0)

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    return [layer.register_forward_hook(trim) for i, layer in enumerate(layers) if i % every == every - 1]


@contextlib.contextmanager
def _heap_trim(model: Any) -> Iterator[None]:
    handles = trim_heap_in_forward(model)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def return_freed_memory(threshold: int = 4 << 20) -> bool:
    """Make glibc give freed blocks over ``threshold`` bytes straight back to the system.

    glibc raises its mmap threshold each time a large block is freed, so later tensors of varying
    sizes come from the heap, which fragments and only grows. A fixed 4 MB threshold keeps it flat; 1 MB
    cost ~7-11% of the speed. It stays for the rest of the process (glibc cannot go back to its dynamic
    threshold), so the plan uses it only where the run owns its process. False where glibc is absent.
    """
    from ..system import glibc

    libc = glibc()
    if libc is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, threshold)) and bool(libc.mallopt(m_trim_threshold, threshold))


def prepare_kernel_for_training() -> None:
    """Memory housekeeping for a notebook kernel that trains in its own process, and is shut down after.

    Frees the models this process and the local service hold (:func:`lessonlib.models.make_room_for_training`),
    caps oneDNN's cache of compiled kernels at 64 shapes (it reads ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` once,
    before its first kernel; an explicit setting wins) and makes glibc hand freed blocks over 4 MB straight back
    (:func:`return_freed_memory`). The last two last as long as the process: call it only in a kernel that
    trains and then ends (notebook 04 shuts its kernel down in its last cell).
    """
    from .. import models

    models.make_room_for_training()
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
    return_freed_memory()


@contextlib.contextmanager
def _malloc_settings() -> Iterator[None]:
    return_freed_memory()
    yield


@contextlib.contextmanager
def _onednn_cache() -> Iterator[None]:
    """``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` set while the block runs. oneDNN keeps the value it read at its first
    kernel for the rest of the process; the variable itself is removed again, so processes started later
    do not inherit it."""
    os.environ[ONEDNN_CACHE_VARIABLE] = str(ONEDNN_CACHE_SHAPES)
    try:
        yield
    finally:
        os.environ.pop(ONEDNN_CACHE_VARIABLE, None)


@contextlib.contextmanager
def applied(names: list[str] | tuple[str, ...], model: Any) -> Iterator[list[str]]:
    """Switch on the measures ``names`` for ``model`` (a trainer's model, before its optimiser exists) while the
    block runs; yields the names switched on. Every process-wide change is undone on the way out."""
    switches = {
        "malloc_settings": _malloc_settings,
        "onednn_cache": _onednn_cache,
        "lean_fp32": lambda: _lean_fp32(model),
        "heap_trim": lambda: _heap_trim(model),
        "compact_loss_head": _compact_loss_head,
        "attention_by_example": lambda: _attention_by_example(model),
    }
    with contextlib.ExitStack() as stack:
        on = []
        for name in ORDER:
            if name in names:
                stack.enter_context(switches[name]())
                on.append(name)
        yield on
