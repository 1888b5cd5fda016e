"""The fine-tuning recipe in one call: AdamW, decay / no-decay groups, warmup schedule.

What seed 002 (and nearly every transformer training script) writes by hand:

    optimizer, scheduler = recipe(model, lr=2e-5, total_steps=N, warmup=0.1, schedule="linear",
                                  clip=1.0)
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()          # clips the gradients to norm 1.0 first
        scheduler.step()
        optimizer.zero_grad()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from optimlab import registry, schedules
from optimlab.clipping import clip_grad_norm
from optimlab.grouping import param_groups
from optimlab.hyperparameters import ArgumentError, Choice

OWNER = "recipe"


def _optimizer_factory(optimizer: str | type[torch.optim.Optimizer]) -> Any:
    """A callable ``(groups, **keywords) -> optimizer``: a class as given, or a registry
    name (its class with the name's own keywords, e.g. momentum=0.9 for "momentum")."""
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer
    Choice(tuple(registry.OPTIMIZERS)).check(OWNER, "optimizer", optimizer)
    return registry.get(optimizer).build


def _groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    if isinstance(model, nn.Module):
        return param_groups(model, weight_decay)
    if isinstance(model, list) and model and all(isinstance(g, Mapping) for g in model):
        return model
    raise ArgumentError(f"{OWNER}: model is a {type(model).__name__}; valid: an nn.Module, "
                        "or a list of param-group dicts such as param_groups() returns")


def recipe(model: nn.Module | list[dict[str, Any]], *, lr: float, weight_decay: float = 0.01,
           total_steps: int, warmup: int | float = 0.1, schedule: str = "cosine",
           optimizer: str | type[torch.optim.Optimizer] = "adamw", min_lr_ratio: float = 0.0,
           schedule_options: Mapping[str, Any] | None = None, clip: float | None = None,
           **optimizer_kwargs: Any) -> tuple[torch.optim.Optimizer, LambdaLR]:
    """An optimizer over ``param_groups(model, weight_decay)`` and its lr scheduler.

    Args:
        model: an ``nn.Module``, or groups you built with ``param_groups(...)`` (to choose
            embedding decay, forced names or lr multipliers); groups keep their own
            ``weight_decay`` and ``lr``, and these arguments are the defaults of the rest.
        lr: the peak lr, reached at the end of the warmup.
        weight_decay: λ of the decaying group (biases, norms and embeddings get 0).
        total_steps: optimizer steps in the run (``len(loader) * epochs``).
        warmup: warmup steps (int) or fraction of ``total_steps`` (float).
        schedule: ``"linear"``, ``"cosine"``, ``"constant"`` or ``"wsd"`` (``schedules``).
        optimizer: a name of ``optimlab.registry`` (``"adamw"``, ``"adam"``, ``"sgd"``,
            ``"momentum"``, ``"nesterov"``, ``"rmsprop"``, ``"adagrad"``), or any
            ``torch.optim.Optimizer`` class, built as ``cls(groups, lr=lr,
            weight_decay=weight_decay, **optimizer_kwargs)``.
        min_lr_ratio: the floor of the decay as a fraction of ``lr`` (not for "constant").
        schedule_options: further keywords of the schedule (wsd: ``decay``, ``decay_shape``).
        clip: if set, every ``optimizer.step()`` first clips the gradients to this global
            norm (``clip_grad_norm``, i.e. torch's ``clip_grad_norm_``, through a step
            pre-hook) and keeps the norm before clipping in ``optimizer.grad_norm``. With a
            closure, the hook runs before the closure computes the gradients: clip inside
            the closure instead.

    Returns:
        ``(optimizer, scheduler)``; step them in torch's order: ``optimizer.step()`` then
        ``scheduler.step()``. Without ``clip``, clip between ``backward()`` and ``step()``
        with ``clip_grad_norm(optimizer, 1.0)``.
    """
    options = dict(schedule_options or {})
    if min_lr_ratio:  # passed only when set: "constant" has no floor to set
        options["min_lr_ratio"] = min_lr_ratio
    # The schedule is checked first: a bad argument fails before the optimizer touches
    # the groups.
    multiplier = schedules.get(schedule, total_steps, warmup, **options)
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float))
                             or not clip > 0):
        raise ArgumentError(f"{OWNER}: clip={clip!r} is invalid; valid: a norm > 0 "
                            "(math.inf: measure only), or None for no clipping")
    build = _optimizer_factory(optimizer)
    built = build(_groups(model, weight_decay), lr=lr, weight_decay=weight_decay,
                  **optimizer_kwargs)
    if clip is not None:
        _clip_before_each_step(built, clip)
    return built, multiplier.scheduler(built)


def _clip_before_each_step(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Clip the gradients before every step; ``optimizer.grad_norm``: the norm before."""
    optimizer.grad_norm = None

    def clip(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        opt.grad_norm = clip_grad_norm(opt, max_norm)

    optimizer.register_step_pre_hook(clip)
