"""The native engine: torch's own fused kernels, where a configuration's math is theirs.

torch's fused Adam, AdamW, SGD and Adagrad kernels already run at the memory-bandwidth
floor (benchmarks/README.md); optimlab calls them rather than competing with them.
A configuration maps onto a kernel only when the kernel computes the same equation:

* Adam rule (Adam, AdamW): bias correction on, ``eps_root`` 0, ε outside the root;
  ``weight_decay_form`` ``"l2"`` -> ``torch._fused_adam_``, ``"decoupled"`` ->
  ``torch._fused_adamw_``, ``"independent"`` (θ ← θ(1 − λ)) -> ``_fused_adamw_`` with
  weight decay λ/η, since θ(1 − η·λ/η) = θ(1 − λ) (not at η = 0);
* SGD rule: heavy-ball momentum with the lr outside the buffer and L2 decay ->
  ``torch._fused_sgd_`` (its first step takes v₁ = g, as ours does);
* Adagrad rule: ε outside the root, L2 decay, on the CPU -> ``torch._fused_adagrad_``.

and a tensor maps when it is dense, real, on one device with its gradient and state, and
its moments are stored in its own dtype (no ``state_dtype`` codec). ``take`` runs the
kernels on the tensors that map and returns the positions of the others, which the
caller hands to another engine. tests/test_engines.py checks every mapped configuration
against the reference engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab import codecs
from optimlab.reference import ensure_state, is_number, plain_numbers
from optimlab.rules import Rule, State

FUSED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
#: torch 2.13's CPU ``_fused_sgd_`` gets bf16/fp16 params wrong (its momentum buffer blows
#: up to ~1e25 within 10 steps where the for-loop's stays O(1); tests/test_engines.py)
FUSED_SGD_DTYPES = (torch.float32, torch.float64)
Kernel = Callable[[Mapping[str, Any], list[Tensor], list[Tensor], list[State], list[bool]],
                  None]


def _adam(hp: Mapping[str, Any]) -> Kernel | None:
    if not hp["bias_correction"] or hp["eps_root"] != 0 or hp["eps_placement"] != "outside":
        return None
    form, decay = hp["weight_decay_form"], hp["weight_decay"]
    if form == "independent":
        if hp["lr"] == 0:
            return None
        decay = decay / hp["lr"]
    fused = torch._fused_adam_ if form == "l2" else torch._fused_adamw_

    def run(hp, params, grads, states, fresh):
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)
        fused(params, grads, [s["exp_avg"] for s in states],
              [s["exp_avg_sq"] for s in states],
              [s["max_exp_avg_sq"] for s in states] if hp["amsgrad"] else [], steps,
              amsgrad=hp["amsgrad"], lr=hp["lr"], beta1=hp["beta1"], beta2=hp["beta2"],
              weight_decay=decay, eps=hp["eps"], maximize=hp["maximize"],
              grad_scale=None, found_inf=None)
    return run


def _sgd(hp: Mapping[str, Any]) -> Kernel | None:
    if hp["momentum_form"] != "heavy_ball" or hp["lr_in_momentum"] or \
            hp["weight_decay_form"] != "l2":
        return None

    def call(hp, params, grads, states, first):
        with_momentum = hp["momentum"] != 0
        torch._fused_sgd_(params, grads,
                          [s["momentum_buffer"] for s in states] if with_momentum else [],
                          weight_decay=hp["weight_decay"], momentum=hp["momentum"],
                          lr=hp["lr"], dampening=hp["dampening"], nesterov=hp["nesterov"],
                          maximize=hp["maximize"], is_first_step=first and with_momentum,
                          grad_scale=None, found_inf=None)

    def run(hp, params, grads, states, fresh):
        if not any(fresh):
            call(hp, params, grads, states, False)
            return
        for first in (True, False):  # a buffer's first step takes v₁ = g
            chosen = [i for i, f in enumerate(fresh) if f == first]
            if chosen:
                call(hp, [params[i] for i in chosen], [grads[i] for i in chosen],
                     [states[i] for i in chosen], first)
    return run


def _adagrad(hp: Mapping[str, Any]) -> Kernel | None:
    if hp["eps_placement"] != "outside" or hp["weight_decay_form"] != "l2":
        return None

    def run(hp, params, grads, states, fresh):
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)
        torch._fused_adagrad_(params, grads, [s["sum"] for s in states], steps,
                              lr=hp["lr"], lr_decay=hp["lr_decay"],
                              weight_decay=hp["weight_decay"], eps=hp["eps"],
                              maximize=hp["maximize"], grad_scale=None, found_inf=None)
    return run


MAPPINGS: dict[str, Callable[[Mapping[str, Any]], Kernel | None]] = {
    "adam": _adam, "sgd": _sgd, "adagrad": _adagrad}


def kernel_for(rule: Rule, hp: Mapping[str, Any]) -> Kernel | None:
    """torch's fused kernel for this group's configuration, or None if none computes it."""
    return _kernel(rule, plain_numbers(hp))


def _kernel(rule: Rule, numbers: Mapping[str, Any]) -> Kernel | None:
    mapping = MAPPINGS.get(rule.name)
    return None if mapping is None else mapping(numbers)


def _gradient_fits(param: Tensor, grad: Tensor) -> bool:
    """The part of ``_maps`` that can change from step to step (a new gradient)."""
    return not grad.is_sparse and grad.dtype == param.dtype and \
        grad.device == param.device and _contiguous(param, grad)


def _maps(rule: Rule, hp: Mapping[str, Any], param: Tensor, grad: Tensor) -> bool:
    """Whether this tensor can go through a fused kernel."""
    if param.is_complex() or param.dtype not in FUSED_DTYPES or \
            type(param) not in (Tensor, torch.nn.Parameter) or not _gradient_fits(param, grad):
        return False
    if rule.name == "adagrad" and param.device.type != "cpu":
        return False
    if rule.name == "sgd" and param.dtype not in FUSED_SGD_DTYPES:
        return False
    return all(codecs.storage_for(param, key, hp.get("state_dtype")) ==
               codecs.FloatStorage(param.dtype) for key in rule.state_keys(hp))


def _contiguous(*tensors: Tensor) -> bool:
    """The fused kernels walk memory linearly: a strided view would be written wrongly."""
    return all(t.is_contiguous() for t in tensors)


def _states_fit(rule: Rule, hp: Mapping[str, Any], states: list[State]) -> bool:
    return all(_contiguous(*(s[k] for k in rule.state_keys(hp))) for s in states)


def _steps_fit(states: list[State], params: list[Tensor]) -> bool:
    """Fused kernels read a float32 step on the param's device."""
    return all(s["step"].dtype == torch.float32 and s["step"].device == p.device
               for s, p in zip(states, params, strict=True))


def take(rule: Rule, hp: Mapping[str, Any], params: Sequence[Tensor],
         grads: Sequence[Tensor], states: Sequence[State], cache: dict[str, Any]) -> list[int]:
    """Step the tensors that map onto a fused kernel; return the positions of the rest."""
    numbers = plain_numbers(hp)
    kernel = _kernel(rule, numbers)
    if kernel is None:
        return list(range(len(params)))
    options = tuple(sorted((k, v) for k, v in numbers.items() if not is_number(v)))
    key = (tuple(map(id, params)), options)
    if cache.get("native_key") != key or not _still_fit(cache["native_chosen"], params,
                                                          grads):
        chosen = [i for i in range(len(params)) if _maps(rule, numbers, params[i], grads[i])]
        fresh = {i: ensure_state(rule, numbers, params[i], states[i]) for i in chosen}
        fitting = [states[i] for i in chosen]
        if not _states_fit(rule, numbers, fitting) or (rule.counts_steps and not _steps_fit(
                fitting, [params[i] for i in chosen])):
            return list(range(len(params)))
        cache.update(native_key=key, native_chosen=chosen)
    else:
        chosen = cache["native_chosen"]
        fresh = dict.fromkeys(chosen, False)
    by_device: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i in chosen:
        by_device.setdefault((params[i].device, params[i].dtype), []).append(i)
    for indices in by_device.values():
        kernel(numbers, [params[i] for i in indices], [grads[i] for i in indices],
               [states[i] for i in indices], [fresh[i] for i in indices])
    taken = set(chosen)
    return [i for i in range(len(params)) if i not in taken]


def _still_fit(chosen: list[int], params: Sequence[Tensor], grads: Sequence[Tensor]) -> bool:
    return all(_gradient_fits(params[i], grads[i]) for i in chosen)
