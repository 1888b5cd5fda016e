"""engine="reference": the eager oracle, a rule run on one tensor at a time.

It takes anything: any dtype, complex params, sparse gradients, every state codec, the
meta device, autograd through the step (``differentiable=True``) and tracing by
torch.compile. Each tensor goes decode -> rule -> encode (codecs.py), with its state
created and counted by state.py.

The numeric policy, shared by every engine: the rule computes in fp32, or fp64 for fp64
params and fp64 state, whatever the param's storage dtype (bf16 and fp16 params
included), and each result is rounded once, when it is stored. torch's fused kernels do
the same, so the engine chosen never changes a trajectory beyond that last rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab import codecs, state
from optimlab.codecs import Storage
from optimlab.rules import Rule, State
from optimlab.views import View


def math_dtype(param: Tensor, storages: Iterable[Storage]) -> torch.dtype:
    """fp32, widened to the param's and any float state's precision (fp64)."""
    dtype = param.real.dtype if param.is_complex() else param.dtype
    dtype = torch.promote_types(dtype, torch.float32)
    for storage in storages:
        dtype = torch.promote_types(dtype, storage.compute_dtype)
    return dtype


def _math(tensor: Tensor, dtype: torch.dtype, private: bool) -> Tensor:
    """The real-valued form the rule sees (complex as (re, im) pairs), in ``dtype``.
    ``private``: a copy even where no cast is needed, so that autograd's saved tensors
    survive the in-place store that follows (``differentiable=True``)."""
    real = torch.view_as_real(tensor) if tensor.is_complex() else tensor
    return real.to(dtype, copy=private)


def update_dense(rule: Rule, hp: Mapping[str, Any], param: Tensor, grad: Tensor,
                 stored: State, storages: Mapping[str, Storage]) -> None:
    """decode -> rule -> encode, every stored tensor written in place (so that views of
    it, such as the compiled engine's flat buffers, stay valid). ``stored`` holds the
    parts each storage names (a state dict, or the pieces of an 8-bit tail)."""
    dtype = math_dtype(param, storages.values())
    private = torch.is_grad_enabled()
    moments = {}
    for key, storage in storages.items():
        parts = codecs.stored_parts(stored, key, storage)
        moments[key] = storage.decode(parts, dtype)
        if private:
            moments[key] = moments[key].clone()
    theta, g = _math(param, dtype, private), _math(grad, dtype, False)
    if not rule.elementwise:  # a reduction's rounding follows the memory order: fix it
        theta, g = theta.contiguous(), g.contiguous()
        moments = {key: value.contiguous() for key, value in moments.items()}
    new_param, new_moments = rule.update(theta, g, moments, hp)
    _math_view(param).copy_(new_param)
    for key, storage in storages.items():
        storage.encode_into(codecs.stored_parts(stored, key, storage), new_moments[key])


def _math_view(tensor: Tensor) -> Tensor:
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


def _update_rows(rule: Rule, hp: Mapping[str, Any], param: Tensor, grad: Tensor,
                 stored: State, storages: Mapping[str, Storage]) -> None:
    """Apply the rule to the rows a sparse gradient touches (exact when rule.row_local)."""
    grad = grad.coalesce()
    rows = tuple(grad.indices())
    dtype = math_dtype(param, storages.values())
    keys = tuple(storages)
    moments = {key: stored[key][rows].to(dtype) for key in keys}
    new_param, new_moments = rule.update(param[rows].to(dtype), grad.values().to(dtype),
                                         moments, hp)
    param.index_put_(rows, new_param.to(param.dtype))
    for key in keys:
        stored[key].index_put_(rows, new_moments[key].to(stored[key].dtype))


def update_one(view: View, numbers: Mapping[str, Any], param: Tensor, grad: Tensor,
               stored: State) -> None:
    """One step of one parameter (``numbers``: the group's numbers, as floats or tensors)."""
    fresh = state.prepare(view, param, stored)
    hp = view.step_hp(state.step_number(view, stored, fresh), numbers)
    if view.rule.tensor_scalars is not None:  # read from the param as stored, not its copy
        hp.update(view.rule.tensor_scalars(hp, param))
    storages = state.storages(view, param)
    rule = view.rule
    if grad.is_sparse and rule.row_local(hp) and all(s.block == 1 for s in storages.values()):
        _update_rows(rule, hp, param, grad, stored, storages)
    else:
        update_dense(rule, hp, param, grad.to_dense() if grad.is_sparse else grad, stored,
                     storages)
    state.advance(view, [stored])


def keeps_tensors(view: View) -> bool:
    """Whether the numbers stay as the group holds them (tensors included): under autograd
    and under torch.compile, where reading a tensor lr would cut the graph."""
    return view.differentiable or torch.compiler.is_compiling()


def take(view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
         states: Sequence[State], cache: dict[str, Any] | None = None) -> list[int]:
    """Run the rule eagerly on each parameter in turn; it takes every tensor."""
    numbers = view.numbers if keeps_tensors(view) else view.floats()
    for param, grad, stored in zip(params, grads, states, strict=True):
        update_one(view, numbers, param, grad, stored)
    return []
