"""engine="native": torch's own fused kernels, where a configuration's math is theirs.

torch's fused Adam, AdamW, SGD and Adagrad kernels already run near the memory-bandwidth
floor (benchmarks/README.md); optimlab calls them rather than competing with them.

Each mapping is an allow-list over the rule's declaration (rules.Rule): every option the
rule declares must be listed with the values the kernel computes, and every number must
be one the kernel reads, or one it lacks that must then be 0. An option or number added
to a rule later is unknown to the mapping, so the engine declines: no new convention ever
runs a kernel that ignores it.

* Adam rule (Adam, AdamW): bias correction on, ``eps_root`` 0, ε outside the root;
  ``weight_decay_form`` ``"l2"`` -> ``torch._fused_adam_``, ``"decoupled"`` ->
  ``torch._fused_adamw_``, ``"independent"`` (θ ← θ(1 − λ)) -> ``_fused_adamw_`` with
  weight decay λ/η, since θ(1 − η·λ/η) = θ(1 − λ) (not at η = 0);
* SGD rule: heavy-ball momentum with the lr outside the buffer and L2 decay ->
  ``torch._fused_sgd_`` (its first step takes v₁ = g, as ours does);
* Adagrad rule: ε outside the root, L2 decay, on the CPU -> ``torch._fused_adagrad_``.

A tensor maps when it is dense, real, contiguous, on a device the kernel has, with its
gradient and its moments stored in its own dtype and its step counter where the kernel
reads it (fp32, on the param's device: state.py). ``take`` returns the others.
tests/test_engines.py checks every mapped configuration against the reference engine and
against torch.optim(fused=True) bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from optimlab import codecs, state
from optimlab.rules import State
from optimlab.views import Config, View

FUSED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
Kernel = Callable[[Mapping[str, Any], Mapping[str, Any], list[Tensor], list[Tensor],
                   list[State], list[bool]], None]


@dataclass(frozen=True)
class Mapping_:
    """Which configurations one of torch's fused kernels computes, and how to call it."""

    run: Kernel
    options: Mapping[str, frozenset[Any]]
    numbers: frozenset[str]  # read by the kernel, or used only to create state
    zero: frozenset[str] = frozenset()  # numbers the kernel lacks: mapped when 0 only
    devices: Mapping[str, tuple[torch.dtype, ...]] = field(default_factory=dict)
    accepts: Callable[[Mapping[str, Any], Mapping[str, float]], bool] = \
        lambda options, numbers: True

    def computes(self, view: View, numbers: Mapping[str, float]) -> bool:
        options = dict(view.config.options)
        if any(name not in self.options or value not in self.options[name]
               for name, value in options.items()):
            return False
        if any(name not in self.numbers and (name not in self.zero or numbers[name] != 0)
               for name in numbers):
            return False
        return self.accepts(options, numbers)


def _adam(hp, numbers, params, grads, states, fresh) -> None:
    form, decay = hp["weight_decay_form"], numbers["weight_decay"]
    if form == "independent":
        decay = decay / numbers["lr"]
    fused = torch._fused_adam_ if form == "l2" else torch._fused_adamw_
    steps = [s["step"] for s in states]
    torch._foreach_add_(steps, 1)
    fused(params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
          [s["max_exp_avg_sq"] for s in states] if hp["amsgrad"] else [], steps,
          amsgrad=hp["amsgrad"], lr=numbers["lr"], beta1=numbers["beta1"],
          beta2=numbers["beta2"], weight_decay=decay, eps=numbers["eps"],
          maximize=hp["maximize"], grad_scale=None, found_inf=None)


def _sgd(hp, numbers, params, grads, states, fresh) -> None:
    with_momentum = numbers["momentum"] != 0
    for first in (True, False):  # a buffer's first step takes v₁ = g (state.py)
        chosen = [i for i, f in enumerate(fresh) if f == first]
        if not chosen:
            continue
        torch._fused_sgd_([params[i] for i in chosen], [grads[i] for i in chosen],
                          [states[i]["momentum_buffer"] for i in chosen] if with_momentum
                          else [], weight_decay=numbers["weight_decay"],
                          momentum=numbers["momentum"], lr=numbers["lr"],
                          dampening=numbers["dampening"], nesterov=hp["nesterov"],
                          maximize=hp["maximize"], is_first_step=first and with_momentum,
                          grad_scale=None, found_inf=None)


def _adagrad(hp, numbers, params, grads, states, fresh) -> None:
    steps = [s["step"] for s in states]
    torch._foreach_add_(steps, 1)
    torch._fused_adagrad_(params, grads, [s["sum"] for s in states], steps, lr=numbers["lr"],
                          lr_decay=numbers["lr_decay"], weight_decay=numbers["weight_decay"],
                          eps=numbers["eps"], maximize=hp["maximize"], grad_scale=None,
                          found_inf=None)


FLAGS = frozenset({False, True})
ALL_DEVICES = {"cpu": FUSED_DTYPES, "cuda": FUSED_DTYPES}
MAPPINGS: dict[str, Mapping_] = {
    "adam": Mapping_(
        _adam,
        options={"maximize": FLAGS, "weight_decay_form": frozenset({"l2", "decoupled",
                                                                   "independent"}),
                 "amsgrad": FLAGS, "bias_correction": frozenset({True}),
                 "eps_placement": frozenset({"outside"})},
        numbers=frozenset({"lr", "weight_decay", "beta1", "beta2", "eps"}),
        zero=frozenset({"eps_root"}),
        devices={**ALL_DEVICES, "meta": FUSED_DTYPES},
        accepts=lambda options, numbers: options["weight_decay_form"] != "independent"
        or numbers["lr"] != 0),
    "sgd": Mapping_(
        _sgd,
        options={"maximize": FLAGS, "weight_decay_form": frozenset({"l2"}),
                 "nesterov": FLAGS, "momentum_form": frozenset({"heavy_ball"}),
                 "lr_in_momentum": frozenset({False})},
        numbers=frozenset({"lr", "weight_decay", "momentum", "dampening"}),
        # torch 2.13's CPU _fused_sgd_ gets bf16/fp16 momentum wrong (its buffer reaches
        # ~1e25 within 10 steps where the for-loop's stays O(1); tests/test_engines.py)
        devices={"cpu": (torch.float32, torch.float64), "cuda": FUSED_DTYPES}),
    "adagrad": Mapping_(
        _adagrad,
        options={"maximize": FLAGS, "weight_decay_form": frozenset({"l2"}),
                 "eps_placement": frozenset({"outside"})},
        numbers=frozenset({"lr", "weight_decay", "lr_decay", "eps",
                           "initial_accumulator_value"}),
        devices={"cpu": FUSED_DTYPES}),  # torch has no CUDA fused Adagrad
}


def mapping_for(view: View) -> Mapping_ | None:
    """The fused kernel that computes this group's configuration, or None."""
    mapping = MAPPINGS.get(view.rule.name)
    if mapping is None or not mapping.computes(view, view.floats()):
        return None
    return mapping


def _fits(mapping: Mapping_, view: View, param: Tensor, grad: Tensor) -> bool:
    """Whether this tensor (its storage and its new gradient) can go through the kernel."""
    dtypes = mapping.devices.get(param.device.type, ())
    if param.dtype not in dtypes or type(param) not in (Tensor, torch.nn.Parameter) or \
            not _gradient_fits(param, grad):
        return False
    return all(s == codecs.FloatStorage(param.dtype)
               for s in state.storages(view, param).values())


def _gradient_fits(param: Tensor, grad: Tensor) -> bool:
    """The fused kernels walk memory linearly: a strided view would be written wrongly."""
    return not grad.is_sparse and grad.dtype == param.dtype and \
        grad.device == param.device and param.is_contiguous() and grad.is_contiguous()


def _state_fits(view: View, param: Tensor, stored: State) -> bool:
    """Its moments contiguous, and its step counter (existing, or as state.py would make
    it) an fp32 tensor on the param's device, as the kernels read it."""
    if not all(stored[k].is_contiguous() for k in view.config.state_keys if k in stored):
        return False
    if not view.rule.counts_steps:
        return True
    step = stored["step"] if "step" in stored else state.new_step(param)
    return step.dtype == torch.float32 and step.device == param.device


def declines(config: Config) -> str | None:
    """Why no fused kernel of torch's runs ``config``'s rule, or None (the per-tensor check
    of options, numbers, dtypes and devices follows in ``take``)."""
    if config.rule.name not in MAPPINGS or not config.rule.elementwise:
        return (f"torch has no fused kernel for rule {config.rule.name!r}; native maps "
                f"{sorted(MAPPINGS)}")
    return None


def take(view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
         states: Sequence[State], cache: dict[str, Any]) -> list[int]:
    """Step the tensors that map onto a fused kernel; return the positions of the rest."""
    if torch.compiler.is_compiling() or view.differentiable:
        return list(range(len(params)))
    mapping = mapping_for(view)
    if mapping is None:
        return list(range(len(params)))
    key = (tuple(map(id, params)), view.config)
    if cache.get("key") == key and all(_gradient_fits(params[i], grads[i])
                                       for i in cache["chosen"]):
        chosen, fresh = cache["chosen"], dict.fromkeys(cache["chosen"], False)
    else:
        chosen, fresh = [], {}
        for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
            # state is created only for what the kernel takes: the engine that takes the
            # rest tells a first step by the state it creates itself
            if _fits(mapping, view, param, grad) and _state_fits(view, param, states[i]):
                chosen.append(i)
                fresh[i] = state.prepare(view, param, states[i])
        cache.update(key=key, chosen=chosen)
    hp, numbers = view.hp(), view.floats()
    by_device: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i in chosen:
        by_device.setdefault((params[i].device, params[i].dtype), []).append(i)
    for indices in by_device.values():
        mapping.run(hp, numbers, [params[i] for i in indices], [grads[i] for i in indices],
                    [states[i] for i in indices], [fresh[i] for i in indices])
    taken = set(chosen)
    return [i for i in range(len(params)) if i not in taken]
