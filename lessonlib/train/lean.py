"""Lean LoRA training on a CPU: the same maths in less memory or time than transformers' defaults.

A CPU without native bf16 trains in fp32. There the default run (SmolLM2-135M, LoRA, 2 examples of
up to 256 tokens a step) peaked at ~1.76 GB without activation checkpointing, and checkpointing
costs ~30% of the speed. Three changes take the memory down instead, without recomputing any
matrix product: with the heap trimmed in the forward pass (``runner.trim_heap_in_forward``),
1.64 GB plain and 1.33-1.36 GB lean at ~5-10% less speed (1.05 GB lean with checkpointing), which
makes lean the machine plan's choice under the default 1.5 GB budget (:mod:`lessonlib.train.machine`):

* **Frozen weights stored in bf16, widened at each use.** A frozen ``nn.Linear`` (every one in the
  decoder layers but the LoRA adapters) keeps its weight in bf16 and computes in fp32: the weight
  is widened just before its matrix product (into a reused buffer), in the forward pass and again
  for the input gradient in the backward pass, and only the bf16 weight is kept for backward.
  0.21 GB less for SmolLM2-135M; the widening reads weights that are no longer in cache, ~10% of a
  step. The conversion gives each fp32 weight's file pages back as it goes (set-up stays ~0.97 GB).
  The products themselves stay fp32, so this works on any CPU. Rounding the frozen weights to bf16
  moves the loss in the third digit (the weights came from a 4-bit GGUF file anyway); the tied
  embedding / output head stays fp32.
* **SwiGLU keeps two tensors, not three.** ``down(silu(gate) * up)`` normally keeps ``gate``,
  ``silu(gate)`` and ``up`` for the backward pass; :class:`SwiGLU` keeps ``gate`` and ``up`` and
  recomputes the sigmoid: 1536 floats a token a layer less (~0.18 MB a token for SmolLM2).
* **Grouped-query attention without copies.** SmolLM2 has 3 key/value heads for 9 query heads;
  transformers repeats keys and values 3 times before SDPA on a CPU (and keeps the copies for
  backward). :func:`grouped_query_attention` lets SDPA read the 3 heads directly (``enable_gqa``,
  checked equal to the repeated form), which saves ~0.09 MB a token.

And for padding-free batches on any CPU (the examples of a step end to end in one row):

* **Attention one example at a time.** With one mask over the whole row the CPU kernel scores every
  query against every key — for two examples ~4x the useful work, masked away afterwards.
  :func:`attention_by_example` runs SDPA on each example with ``is_causal``, which skips the
  hidden half, from the example boundaries TRL's collator passes along (``cu_seq_lens_q``).

Nothing here changes what is learned beyond the bf16 rounding of frozen weights:
``tests/test_train.py`` checks losses and gradients against the unmodified model.

>>> import torch
>>> layer = torch.nn.Linear(4, 3, bias=False).requires_grad_(False)
>>> reference = layer.weight.detach().bfloat16().float()
>>> store_frozen_in_bf16(torch.nn.Sequential(layer))
1
>>> layer.weight.dtype, layer(torch.ones(1, 4)).dtype
(torch.bfloat16, torch.float32)
>>> bool(torch.allclose(layer(torch.ones(1, 4)), torch.ones(1, 4) @ reference.T))
True
"""

from __future__ import annotations

import contextlib
import os
import threading
import types
from typing import Any, Iterator

import torch
import torch.nn.functional as F


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
    for _, module in model.named_modules(remove_duplicate=False):
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


@contextlib.contextmanager
def grouped_query_attention() -> Iterator[None]:
    """While the block runs, transformers' SDPA attention reads key/value heads without repeating them.

    transformers checks ``TRANSFORMERS_SDPA_FORCE_GQA`` at every call and then passes ``enable_gqa``
    to ``scaled_dot_product_attention``, which PyTorch's CPU kernels support with a mask too.
    """
    name = "TRANSFORMERS_SDPA_FORCE_GQA"
    before = os.environ.get(name)
    os.environ[name] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def example_segments(cu_seq_lens: list[int]) -> list[tuple[int, int]]:
    """Each example's ``(start, end)`` in a padding-free row, from TRL's ``cu_seq_lens``.

    The padding at the end of a row (to a multiple of 32) comes as 1-token "examples": one segment.

    >>> example_segments([0, 120, 310, 311, 312, 313])
    [(0, 120), (120, 310), (310, 313)]
    """
    segments: list[list[int]] = []
    padding = False
    for start, end in zip(cu_seq_lens, cu_seq_lens[1:]):
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


@contextlib.contextmanager
def attention_by_example() -> Iterator[None]:
    """While the block runs, transformers' ``sdpa`` attention is :func:`per_example_attention`."""
    from transformers.modeling_utils import AttentionInterface

    mapping = AttentionInterface._global_mapping
    before = mapping.get("sdpa")
    mapping["sdpa"] = per_example_attention
    try:
        yield
    finally:
        mapping["sdpa"] = before
