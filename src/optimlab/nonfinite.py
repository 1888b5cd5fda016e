"""Non-finite gradients: the check behind ``nonfinite="skip"`` and ``"raise"``.

The check reads every gradient once, before any parameter or state is touched, so that a
skipped or refused step changes nothing. Under ZeroRedundancyOptimizer each rank sees only
its shard, so the ranks of ``nonfinite_group`` agree (one all-reduce) before any skips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab.checkpoint import param_label

POLICIES = ("ignore", "skip", "raise")


def gradient_values(grad: Tensor) -> Tensor:
    """The numbers of a gradient: a sparse one's values, a complex one's (re, im) pairs."""
    values = grad.coalesce().values() if grad.is_sparse else grad
    return torch.view_as_real(values) if values.is_complex() else values


def finite(tensors: list[Tensor]) -> bool:
    """True if no tensor holds a NaN or an Inf (tensors on one device).

    max |x| is NaN or Inf exactly when x holds one: a single reading pass. On DTensors
    (FSDP2) the max is a Partial("max") that is reduced over every shard before it is
    read, so all ranks get the same answer; ``bool(isfinite(x).all())`` would read only
    the local shard's.
    """
    tensors = [t for t in tensors if t.numel()]
    if not tensors:
        return True
    return bool(torch.stack(torch._foreach_norm(tensors, float("inf"))).isfinite().all())


def gradients_finite(owner: str, groups: Sequence[Mapping[str, Any]], policy: str,
                     process_group: Any = None) -> bool:
    """True if every gradient (on every rank of ``process_group``) is finite. With
    ``policy="raise"``, raise FloatingPointError naming the first parameter whose
    gradient is not."""
    local = _local_finite(groups)
    everywhere = local if process_group is None else _agree(groups, local, process_group)
    if everywhere:
        return True
    if policy == "raise":
        where = (f"parameter {_first_nonfinite(groups)}" if not local
                 else "a parameter on another rank")
        raise FloatingPointError(f"{owner}: the gradient of {where} holds NaN or Inf; no "
                                 "parameter or state was changed")
    return False


def _local_finite(groups: Sequence[Mapping[str, Any]]) -> bool:
    by_device: dict[torch.device, list[Tensor]] = {}
    for group in groups:
        for param in group["params"]:
            if param.grad is not None:
                values = gradient_values(param.grad)
                by_device.setdefault(values.device, []).append(values)
    return all(finite(values) for values in by_device.values())


def _agree(groups: Sequence[Mapping[str, Any]], local: bool, process_group: Any) -> bool:
    """True if ``local`` on every rank of ``process_group`` (a collective call)."""
    import torch.distributed as dist

    device = next((p.device for g in groups for p in g["params"]), torch.device("cpu"))
    flag = torch.tensor([0 if local else 1], dtype=torch.int32, device=device)
    dist.all_reduce(flag, group=process_group)
    return int(flag.item()) == 0


def _first_nonfinite(groups: Sequence[Mapping[str, Any]]) -> str:
    for index, group in enumerate(groups):
        for position, param in enumerate(group["params"]):
            if param.grad is not None and not finite([gradient_values(param.grad)]):
                return param_label(group, index, position)
    return "(unknown)"
