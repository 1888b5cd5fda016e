"""The params a user hands an optimizer, checked as torch.optim checks them, with reasons."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from optimlab.hyperparameters import ArgumentError


def param_tensor(owner: str, where: str, item: Any, differentiable: bool) -> Tensor:
    """The tensor of a params entry (a tensor, or a (name, tensor) pair), checked; a
    non-leaf is taken under ``differentiable=True``, as torch.optim takes it."""
    tensor = item[1] if isinstance(item, tuple) and len(item) == 2 else item
    if not isinstance(tensor, Tensor):
        raise ArgumentError(f"{owner}: {where} is a {type(tensor).__name__}; valid: a tensor, "
                            "or a (name, tensor) pair as named_parameters() gives")
    if not (tensor.is_floating_point() or tensor.is_complex()):
        raise ArgumentError(f"{owner}: {where} has dtype {tensor.dtype}; valid: a floating "
                            "point or complex dtype")
    if not (tensor.is_leaf or tensor.retains_grad or differentiable):
        raise ArgumentError(f"{owner}: {where} is not a leaf tensor (it was computed from "
                            "others); valid: a leaf, e.g. an nn.Parameter (or any tensor "
                            "with differentiable=True)")
    return tensor


def listed(owner: str, params: Any) -> list[Any]:
    """``params`` as a list, refusing what torch.optim refuses, with the reason."""
    if isinstance(params, Tensor):
        raise ArgumentError(f"{owner}: params is a single tensor; valid: an iterable of "
                            "tensors, of (name, tensor) pairs, or of param-group dicts")
    if isinstance(params, (set, frozenset)):
        raise ArgumentError(f"{owner}: params is a set, whose order changes between runs; "
                            "valid: a list or another ordered iterable")
    if not isinstance(params, Iterable):
        raise ArgumentError(f"{owner}: params={params!r} is not iterable; valid: an iterable "
                            "of tensors, of (name, tensor) pairs, or of param-group dicts")
    return list(params)


def check_unique(owner: str, param_groups: list[dict[str, Any]], index: int,
                 tensors: list[Tensor]) -> None:
    """Refuse a tensor already in a group (torch only warns, then steps it twice)."""
    seen: dict[int, int] = {}
    for group_index, group in enumerate(param_groups):
        seen.update({id(p): group_index for p in group["params"]})
    for i, tensor in enumerate(tensors):
        if id(tensor) in seen:
            other = seen[id(tensor)]
            where = "earlier in the same group" if other == index else f"in group {other}"
            raise ArgumentError(f"{owner}: params[{i}] of group {index} (shape "
                                f"{tuple(tensor.shape)}) is already {where}; valid: each "
                                "parameter in exactly one group, once")
        seen[id(tensor)] = index
