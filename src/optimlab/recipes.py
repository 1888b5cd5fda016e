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

import fnmatch
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from optimlab import registry, schedules
from optimlab.clipping import clip_grad_norm
from optimlab.grouping import EMBEDDING_TYPES, NORM_TYPES, param_groups, trainables
from optimlab.hyperparameters import ArgumentError, Choice
from optimlab.rules import MATRIX

OWNER = "recipe"


def _optimizer_factory(optimizer: str | type[torch.optim.Optimizer]) -> Any:
    """A callable ``(groups, **keywords) -> optimizer``: a class as given, or a registry
    name (its class with the name's own keywords, e.g. momentum=0.9 for "momentum")."""
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer
    Choice(tuple(registry.OPTIMIZERS)).check(OWNER, "optimizer", optimizer)
    return registry.get(optimizer).build


#: names of 2-D params that are not hidden matrices (Keller Jordan's Muon examples: the
#: embeddings and the output head go to AdamW): globs over every name of a param
NOT_HIDDEN = ("*embed*", "*head*", "*classifier*", "wte.*", "wpe.*", "*.wte.*", "*.wpe.*")


def _hidden(names: list[str], param: Tensor, modules: list[nn.Module]) -> bool:
    """Whether a param is a hidden matrix: 2-D, held by no embedding or norm (grouping's
    classes), and no name of it matching ``NOT_HIDDEN`` (a head tied to the embedding is
    found under either name)."""
    if param.ndim != 2 or any(isinstance(m, (*NORM_TYPES, *EMBEDDING_TYPES)) for m in modules):
        return False
    return not any(fnmatch.fnmatchcase(name, glob) for name in names for glob in NOT_HIDDEN)


def _split_for_matrix_rule(cls: type, groups: list[dict[str, Any]], model: Any,
                           companion: Mapping[str, Any]) -> list[dict[str, Any]]:
    """For a matrix rule with a companion (Muon and AdamW): each group's hidden matrices
    stay with the rule, the rest (embeddings, head, biases, norms) go to a group of the
    same settings that names the companion rule, with ``companion``'s keywords."""
    owners = {id(e.param): e for e in trainables(model)} if isinstance(model, nn.Module) \
        else {}
    name = next(iter(cls.companions))
    split = []
    for group in groups:
        items = group["params"]
        items = [items] if isinstance(items, Tensor) else list(items)
        hidden, others = [], []
        for item in items:
            label, param = item if isinstance(item, tuple) else ("", item)
            entry = owners.get(id(param))
            names, modules = (entry.names, entry.modules) if entry else ([label], [])
            (hidden if _hidden(names, param, modules) else others).append(item)
        if hidden:
            split.append({**group, "params": hidden})
        if others:
            split.append({**group, **companion, "params": others, "rule": name})
    return split


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
           companion: Mapping[str, Any] | None = None,
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
            ``"momentum"``, ``"nesterov"``, ``"rmsprop"``, ``"adagrad"``, ``"adafactor"``,
            ``"muon"``), or any ``torch.optim.Optimizer`` class, built as ``cls(groups,
            lr=lr, weight_decay=weight_decay, **optimizer_kwargs)``. ``"muon"`` builds
            the hybrid people use, in one optimizer: the hidden 2-D matrices by Muon, the
            embeddings, head (names matching ``NOT_HIDDEN``), biases and norms by AdamW
            (groups with ``rule="adamw"``).
        companion: for a matrix rule (Muon), the keywords of its AdamW groups (default
            ``{"lr": 1e-3}``, the registry's AdamW lr; their ``weight_decay`` is
            ``param_groups``'s); they follow the same schedule.
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
    groups = _groups(model, weight_decay)
    cls = build if isinstance(build, type) else registry.get(optimizer).cls
    if getattr(getattr(cls, "rule", None), "structure", None) == MATRIX and \
            getattr(cls, "companions", None):
        companion = {"lr": registry.get("adamw").default_lr, **(companion or {})}
        groups = _split_for_matrix_rule(cls, groups, model, companion)
    built = build(groups, lr=lr, weight_decay=weight_decay, **optimizer_kwargs)
    if clip is not None:
        _clip_before_each_step(built, clip)
    return built, multiplier.scheduler(built)


def _clip_before_each_step(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Clip the gradients before every step; ``optimizer.grad_norm``: the norm before."""
    optimizer.grad_norm = None

    def clip(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        opt.grad_norm = clip_grad_norm(opt, max_norm)

    optimizer.register_step_pre_hook(clip)
