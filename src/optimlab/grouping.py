"""Parameter groups: which parameters get weight decay, decided by module type and shape.

The rule for a trainable parameter, first match wins:

1. ``predicate(name, param, module)`` returns True (decay) or False (no decay);
2. its name matches a glob in ``force_decay`` or ``force_no_decay``;
3. ``param.ndim <= 1``: no decay. Biases, the scales and shifts of every normalisation
   layer whatever its class is called (a hand-written ``T5LayerNorm`` or ``LlamaRMSNorm``),
   scalar gains. Decay would pull them towards 0, which is not "simpler" for a scale;
4. owned by a normalisation layer (``NORM_TYPES``; catches a 2-D LayerNorm weight): no decay;
5. owned by an embedding (``EMBEDDING_TYPES``): decay only if ``decay_embeddings``. Off by
   default because a table's rows are only trained when their token occurs, while decoupled
   decay shrinks every row at every step: rare tokens' rows decay towards 0 between their
   updates (minGPT does not decay embeddings; HF's Trainer and nanoGPT do);
6. every other parameter (Linear, Conv, attention projections, any tensor of ndim >= 2): decay.

A parameter shared by several modules (tied embedding / output weights) appears once, under
the name ``named_parameters()`` gives it, and rules 4-5 apply if any of its modules is a norm
or an embedding. Frozen parameters (``requires_grad=False``) are left out.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.hyperparameters import FLAG, ArgumentError, Range

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
    nn.LazyBatchNorm1d, nn.LazyBatchNorm2d, nn.LazyBatchNorm3d,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
    nn.LazyInstanceNorm1d, nn.LazyInstanceNorm2d, nn.LazyInstanceNorm3d,
    nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.LocalResponseNorm,
)
EMBEDDING_TYPES: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)

Predicate = Callable[[str, Tensor, nn.Module], "bool | None"]
OWNER = "param_groups"


@dataclass
class _Trainable:
    """One trainable tensor: its first name, every name it has, every module that holds it."""

    name: str
    param: Tensor
    names: list[str] = field(default_factory=list)
    modules: list[nn.Module] = field(default_factory=list)


def trainables(model: nn.Module) -> list[_Trainable]:
    """Each trainable parameter once, in ``model.named_parameters()`` order."""
    found: dict[int, _Trainable] = {}
    # remove_duplicate=False visits a shared module under each of its names, so tied
    # parameters learn all their names and owners; the first visit fixes the order.
    for prefix, module in model.named_modules(remove_duplicate=False):
        for local, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            name = f"{prefix}.{local}" if prefix else local
            entry = found.setdefault(id(param), _Trainable(name, param))
            entry.names.append(name)
            entry.modules.append(module)
    return list(found.values())


def _patterns(patterns: Iterable[str] | str) -> list[str]:
    """A list of globs; one string is one glob, not a sequence of one-letter globs."""
    return [patterns] if isinstance(patterns, str) else list(patterns)


def _matches(entry: _Trainable, patterns: Sequence[str]) -> str | None:
    """The first glob of ``patterns`` that one of the entry's names matches."""
    return next((pattern for pattern in patterns
                 if any(fnmatch.fnmatchcase(name, pattern) for name in entry.names)), None)


def _forced(entry: _Trainable, force_decay: Sequence[str], force_no_decay: Sequence[str],
            predicate: Predicate | None) -> bool | None:
    """The user's verdict on ``entry`` (rules 1-2), or None to use the default."""
    if predicate is not None:
        verdict = predicate(entry.name, entry.param, entry.modules[0])
        if verdict is not None:
            if not isinstance(verdict, bool):
                raise ArgumentError(f"{OWNER}: predicate returned {verdict!r} for "
                                    f"{entry.name!r}; valid: True, False or None")
            return verdict
    to_decay, to_keep = _matches(entry, force_decay), _matches(entry, force_no_decay)
    if to_decay and to_keep:
        raise ArgumentError(f"{OWNER}: {entry.name!r} matches force_decay pattern "
                            f"{to_decay!r} and force_no_decay pattern {to_keep!r}; valid: "
                            "at most one side")
    return True if to_decay else False if to_keep else None


def decays_by_default(entry: _Trainable, decay_embeddings: bool) -> bool:
    """The default verdict (rules 3-6 of the module docstring)."""
    if entry.param.ndim <= 1:
        return False
    if any(isinstance(module, NORM_TYPES) for module in entry.modules):
        return False
    if any(isinstance(module, EMBEDDING_TYPES) for module in entry.modules):
        return decay_embeddings
    return True


def _multiplier(entry: _Trainable, lr_multipliers: Mapping[str, float]) -> float:
    pattern = _matches(entry, list(lr_multipliers))
    return 1.0 if pattern is None else float(lr_multipliers[pattern])


def _check(model: Any, weight_decay: Any, lr: Any, decay_embeddings: Any,
           lr_multipliers: Mapping[str, float]) -> None:
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"{OWNER}: model is a {type(model).__name__}; valid: an "
                            "nn.Module")
    Range(0.0).check(OWNER, "weight_decay", weight_decay)
    FLAG.check(OWNER, "decay_embeddings", decay_embeddings)
    if lr is not None:
        Range(0.0).check(OWNER, "lr", lr)
    for pattern, multiplier in lr_multipliers.items():
        Range(0.0).check(OWNER, f"lr_multipliers[{pattern!r}]", multiplier)
    if lr_multipliers and lr is None:
        raise ArgumentError(f"{OWNER}: lr=None is invalid with lr_multipliers; valid: the "
                            "base lr >= 0 that the multipliers scale")


def param_groups(model: nn.Module, weight_decay: float, *, lr: float | None = None,
                 decay_embeddings: bool = False, force_decay: Iterable[str] | str = (),
                 force_no_decay: Iterable[str] | str = (), predicate: Predicate | None = None,
                 lr_multipliers: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """Param groups for ``model``: weight decay where it belongs, none elsewhere.

    Args:
        model: any ``nn.Module``.
        weight_decay: λ of the decaying groups; the others get 0.
        lr: base lr; when given, each group carries ``lr = lr * multiplier``.
        decay_embeddings: decay ``nn.Embedding`` / ``nn.EmbeddingBag`` tables (default no).
        force_decay: globs (``fnmatch``, e.g. ``"*.pos_embed"``, ``"head.*"``) matched
            against each parameter's full name; a match decays it.
        force_no_decay: globs as for ``force_decay``; a match keeps it from decaying.
        predicate: ``predicate(name, param, module) -> True | False | None``; decides
            before the globs (None: no opinion). ``module`` is the module holding it.
        lr_multipliers: ``{glob: m}``; the first glob a name matches scales its lr by m
            (e.g. ``{"embed.*": 0.1}``); needs ``lr``.

    Returns:
        One group per (decays, lr multiplier), decaying ones first, as dicts with
        ``params`` = ``[(name, tensor), ...]`` (so the optimizer keeps ``param_names``),
        ``weight_decay`` and, when ``lr`` is given, ``lr``. Every trainable parameter is
        in exactly one group. ``print(param_groups_summary(groups))`` shows them.

        >>> optimizer = torch.optim.AdamW(param_groups(model, weight_decay=0.01), lr=3e-4)
    """
    force_decay, force_no_decay = _patterns(force_decay), _patterns(force_no_decay)
    lr_multipliers = dict(lr_multipliers or {})
    _check(model, weight_decay, lr, decay_embeddings, lr_multipliers)
    groups: dict[tuple[bool, float], dict[str, Any]] = {}
    for entry in trainables(model):
        verdict = _forced(entry, force_decay, force_no_decay, predicate)
        decay = decays_by_default(entry, decay_embeddings) if verdict is None else verdict
        multiplier = _multiplier(entry, lr_multipliers)
        group = groups.get((decay, multiplier))
        if group is None:
            group = {"params": [], "weight_decay": float(weight_decay) if decay else 0.0}
            if lr is not None:
                group["lr"] = float(lr) * multiplier
            groups[(decay, multiplier)] = group
        group["params"].append((entry.name, entry.param))
    if not groups:
        raise ArgumentError(f"{OWNER}: model has no trainable parameters; valid: a model "
                            "with at least one parameter with requires_grad=True")
    # Decaying groups first, as hand-written recipes list them; stable, so each side
    # keeps first-parameter order.
    return [group for (decay, _), group in sorted(groups.items(), key=lambda kv: not kv[0][0])]


def _named_tensors(group: Mapping[str, Any], index: int) -> list[tuple[str, Tensor]]:
    """(name, tensor) pairs of a group from param_groups() or from optimizer.param_groups."""
    params = group["params"]
    params = [params] if isinstance(params, Tensor) else list(params)
    names = group.get("param_names")
    if names is not None:
        return list(zip(names, params, strict=True))
    return [item if isinstance(item, tuple) else (f"<group {index}, #{position}>", item)
            for position, item in enumerate(params)]


def param_groups_summary(groups: Iterable[Mapping[str, Any]] | torch.optim.Optimizer) -> str:
    """A readable table of the groups: their weight decay and lr, and every parameter.

    ``groups`` is what ``param_groups()`` returns, an optimizer, or its ``param_groups``.
    """
    if isinstance(groups, torch.optim.Optimizer):
        groups = groups.param_groups
    lines = []
    for index, group in enumerate(groups):
        named = _named_tensors(group, index)
        settings = [f"{key}={float(group[key]):g}" for key in ("weight_decay", "lr", "initial_lr")
                    if group.get(key) is not None]
        count = sum(tensor.numel() for _, tensor in named)
        plural = "" if len(named) == 1 else "s"
        lines.append(f"group {index}: {', '.join(settings) or 'optimizer defaults'} -- "
                     f"{len(named)} tensor{plural}, {count:,} parameters")
        width = max((len(name) for name, _ in named), default=0)
        lines += [f"  {name:<{width}}  {tuple(tensor.shape)}" for name, tensor in named]
    return "\n".join(lines)
