"""The CPU kernel path: a rule (rules.py) generated as C, built once, one call per group.

The rule is traced with symbols (optimlab.ir.trace), its elementwise body emitted as C with the
per-call scalars hoisted (emit.py), placed in the loop template of its storages
(templates.py), built by the system C compiler and cached on disk (build.py), and called
through ctypes over all the tensors of a group at once (kernel.py)::

    from optimlab import ckernel, rules

    kernel = ckernel.kernel_for(
        rules.adam, options={"maximize": False, "weight_decay_form": "decoupled",
                             "eps_placement": "outside"},
        numbers=("lr", "beta1", "beta2", "eps", "weight_decay", "eps_root",
                 "bias_correction1", "bias_correction2"),
        state_keys=("exp_avg", "exp_avg_sq"), storages=("f32", "f32"),
        param_dtype=torch.float32)
    kernel(params, grads, [[m, v] for m, v in moments], numbers={"lr": 1e-3, ...})

The rule is the only statement of the algorithm: change it and the next kernel_for
generates, builds and caches the new one. The per-step numbers (bias corrections, ...)
are the caller's, from ``Rule.step_scalars``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from optimlab import codecs
from optimlab.ckernel import build
from optimlab.ckernel.build import BuildError, cache_dir
from optimlab.ckernel.emit import emit
from optimlab.ckernel.kernel import Bound, Configuration, Kernel
from optimlab.ckernel.templates import STORAGES, source
from optimlab.ir.trace import UnsupportedRule, trace

__all__ = ["Bound", "BuildError", "Kernel", "UnsupportedRule", "available", "cache_dir",
           "floor_kernel", "kernel_for", "storage_name"]

_DTYPE_NAMES = {torch.float32: "f32", torch.float64: "f64", torch.bfloat16: "bf16",
                torch.float16: "f16"}


def available() -> bool:
    """Whether kernels can be built here (a C compiler that links OpenMP; cached)."""
    return build.available()


def storage_name(storage: Any, key: str) -> str:
    """The template's name for how ``key`` is stored: a name ("f32", "bf16", "8bit", ...),
    a dtype (int8: 8-bit blockwise) or a codecs storage object."""
    if isinstance(storage, codecs.Blockwise8bit):
        return "s8" if storage.signed else "u8"
    if isinstance(storage, codecs.FloatStorage):
        storage = storage.dtype
    if storage in ("8bit", torch.int8):
        return "u8" if key in codecs.NONNEGATIVE_MOMENTS else "s8"
    if isinstance(storage, torch.dtype) and storage in _DTYPE_NAMES:
        return _DTYPE_NAMES[storage]
    if isinstance(storage, str) and storage in STORAGES:
        return storage
    raise ValueError(f"storage {storage!r} of state {key!r} is not one the kernels keep; "
                     f"valid: {sorted(STORAGES)}, '8bit', float dtypes, torch.int8, or a "
                     "codecs storage")


def _dtype_name(dtype: torch.dtype, argument: str) -> str:
    if dtype not in _DTYPE_NAMES:
        raise ValueError(f"{argument}={dtype} is not supported; valid: "
                         f"{list(_DTYPE_NAMES)}")
    return _DTYPE_NAMES[dtype]


def kernel_for(update: Callable, options: Mapping[str, Any], numbers: Sequence[str],
               state_keys: Sequence[str], storages: Sequence[Any],
               param_dtype: torch.dtype, grad_dtype: torch.dtype | None = None) -> Kernel:
    """The kernel of ``update`` (a rule of rules.py) under ``options`` (bools and strings,
    which decide the rule's ``if``s), built or loaded once per process and configuration.

    ``numbers``: the names of the rule's numeric hyperparameters, passed at each call;
    ``storages``: how each of ``state_keys`` is stored (see :func:`storage_name`);
    the element math is fp32, or fp64 when the param or a stored state is fp64.
    Raises :class:`UnsupportedRule` when the rule uses what the generator cannot express,
    and :class:`BuildError` when the compiler fails.
    """
    if len(storages) != len(state_keys):
        raise ValueError(f"storages={list(storages)} must name one storage per state key "
                         f"{list(state_keys)}")
    names = tuple(storage_name(s, k) for s, k in zip(storages, state_keys, strict=True))
    param = _dtype_name(param_dtype, "param_dtype")
    grad = _dtype_name(grad_dtype or param_dtype, "grad_dtype")
    frozen = tuple(sorted(options.items()))
    return _kernel(update, frozen, Configuration(tuple(state_keys), names, param, grad,
                                                 tuple(numbers)))


@functools.cache
def _kernel(update: Callable, options: tuple[tuple[str, Any], ...],
            configuration: Configuration) -> Kernel:
    graph = trace(update, dict(options), configuration.numbers, configuration.state_keys)
    body = emit(graph, configuration.numbers, configuration.state_keys)
    double = "f64" in (configuration.param, *configuration.storages)
    title = (f"{getattr(update, '__qualname__', update)} {dict(options)} param "
             f"{configuration.param}, grad {configuration.grad}, state "
             f"{dict(zip(configuration.state_keys, configuration.storages, strict=True))}")
    text = source(body, configuration.param, configuration.grad, configuration.storages,
                  double, title.replace("*/", "* /"))
    path = build.library(text)
    return Kernel(configuration, path, build.load(path), body.divides, body.roots)


def _touch(param: Any, grad: Any, state: Mapping[str, Any], hp: Mapping[str, Any]) -> Any:
    """The same-traffic floor's rule: every array read and written, trivial arithmetic,
    values unchanged (``zero`` is 0 at run time, which the compiler cannot know)."""
    nudge = hp["zero"] * grad
    return param + nudge, {key: value + nudge for key, value in state.items()}


def floor_kernel(state_keys: Sequence[str], storages: Sequence[Any],
                 param_dtype: torch.dtype, grad_dtype: torch.dtype | None = None) -> Kernel:
    """A kernel moving the bytes a rule's kernel moves with these storages, with trivial
    arithmetic: the same-traffic floor. Call it with ``numbers={"zero": 0.0}``; 8-bit
    state is read and written as raw codes and scales, without the codec's arithmetic."""
    names = [storage_name(s, k) for s, k in zip(storages, state_keys, strict=True)]
    raw = ["raw8" if STORAGES[n].blocked else n for n in names]
    return kernel_for(_touch, {}, ("zero",), state_keys, raw, param_dtype, grad_dtype)
