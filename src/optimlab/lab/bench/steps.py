"""Steps the benchmark times besides torch.optim and optimlab's optimizers.

* :class:`KernelStep`: the generated C kernel (optimlab.ckernel) called directly, one call
  per group of tensors stored alike, with state made by the codecs as the engines make
  it: the kernel path before it is wired into the engines.
* :class:`FloorStep`: the same-traffic floor of a step: a generated kernel that reads and
  writes exactly the arrays a step of that kind does (param, gradient, each state in its
  storage, 8-bit codes and their block scales), with trivial arithmetic.
* :func:`deepspeed_adam`: DeepSpeed's CPU Adam, where ``deepspeed`` is installed and its
  op builds (never a dependency of optimlab).

Each raises :class:`Unavailable` when it cannot run here; the benchmark leaves it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

import optimlab
from optimlab import codecs


class Unavailable(Exception):
    """This step cannot run on this machine (the reason is the message)."""


def _kernels():
    from optimlab import ckernel

    if not ckernel.available():
        raise Unavailable("no C compiler for optimlab.ckernel")
    return ckernel


def _groups(params: Sequence[Tensor], keys: Sequence[str], state_dtype: Any) -> dict:
    """Params by (their dtype, how each state key is stored), as codecs.storage_for
    decides it (small tensors keep their moments in the param's dtype)."""
    groups: dict[tuple, list[Tensor]] = {}
    for p in params:
        storages = tuple(codecs.storage_for(p, key, state_dtype) for key in keys)
        groups.setdefault((p.dtype, storages), []).append(p)
    return groups


class _Bound:
    """Kernels bound to their groups of params, the state made by the codecs."""

    def __init__(self, params: Sequence[Tensor], keys: Sequence[str], state_dtype: Any,
                 make_kernel: Any, initial: dict[str, float]) -> None:
        self.state: dict[Tensor, dict[str, Tensor]] = {}
        self.bound = []
        for (dtype, storages), members in _groups(params, keys, state_dtype).items():
            stored = []
            for p in members:
                state: dict[str, Tensor] = {}
                for key, storage in zip(keys, storages, strict=True):
                    state.update(storage.create(p, key, initial.get(key, 0.0)))
                self.state[p] = state
                stored.append([state[name] for key, s in zip(keys, storages, strict=True)
                               for name in s.parts(key)])
            kernel = make_kernel(storages, dtype)
            self.bound.append(kernel.bind(members, stored))

    def run(self, numbers: dict[str, Any]) -> None:
        for bound in self.bound:
            bound.step(numbers)  # reads each param's .grad


class KernelStep(_Bound):
    """``optimlab.<name>(params, **kwargs)``'s rule and hyperparameters, stepped by the
    generated C kernel (one call per group of tensors stored alike)."""

    def __init__(self, params: Sequence[Tensor], name: str, **kwargs: Any) -> None:
        ckernel = _kernels()
        model = getattr(optimlab, name)(params, **kwargs)
        view = model.view(model.param_groups[0])
        self.rule, self.hp = view.rule, view.hp(view.floats())
        options = dict(view.config.options)
        numbers = (*self.rule.numbers, *self.rule.step_numbers)
        keys = view.config.state_keys

        def make(storages: tuple, dtype: torch.dtype) -> Any:
            return ckernel.kernel_for(self.rule.update, options, numbers, keys, storages,
                                      dtype)

        super().__init__(params, keys, view.config.state_dtype, make,
                         self.rule.initial_values(self.hp))
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        self.run({**self.hp, **self.rule.step_scalars(self.hp, float(self.steps))})


class FloorStep(_Bound):
    """The same-traffic floor of a step with ``states`` state arrays per param, stored
    as ``state_dtype`` asks (None: the param's dtype; torch.int8: 8-bit blockwise)."""

    def __init__(self, params: Sequence[Tensor], states: int, state_dtype: Any) -> None:
        ckernel = _kernels()
        # the floor's keys: signed and non-negative moments, as Adam's (8-bit codes differ)
        keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")[:states] if states <= 3 else \
            tuple(f"state{i}" for i in range(states))

        def make(storages: tuple, dtype: torch.dtype) -> Any:
            return ckernel.floor_kernel(keys, storages, dtype)

        super().__init__(params, keys, state_dtype, make, {})

    def step(self) -> None:
        self.run({"zero": 0.0})


def deepspeed_adam(params: Sequence[Tensor], **kwargs: Any) -> Any:
    """DeepSpeed's CPU Adam (AdamW with ``adamw_mode=True``), if it builds here."""
    try:
        from deepspeed.ops.adam import DeepSpeedCPUAdam
    except Exception as error:  # ImportError, or its own import-time failures
        raise Unavailable(f"deepspeed is not importable: {error}") from None
    try:
        return DeepSpeedCPUAdam(params, **kwargs)
    except Exception as error:  # its op failed to build
        raise Unavailable(f"DeepSpeed's CPU Adam op did not build: {error}") from None
