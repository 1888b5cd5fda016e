"""Gradient clipping by global norm: torch's ``clip_grad_norm_``, reporting the norm.

    ‖g‖ = (Σᵢ ‖gᵢ‖ᵖ)^(1/p) over every gradient;   gᵢ ← gᵢ · min(1, c / (‖g‖ + 1e-6))
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.hyperparameters import ArgumentError

OWNER = "clip_grad_norm"


def _tensors(parameters: Any) -> list[Tensor]:
    """The tensors of an optimizer (its groups' params), a module, one tensor or an iterable."""
    if isinstance(parameters, torch.optim.Optimizer):
        return [param for group in parameters.param_groups for param in group["params"]]
    if isinstance(parameters, nn.Module):
        return list(parameters.parameters())
    if isinstance(parameters, Tensor):
        return [parameters]
    if isinstance(parameters, Iterable):
        return list(parameters)
    raise ArgumentError(f"{OWNER}: parameters is a {type(parameters).__name__}; valid: an "
                        "optimizer, an nn.Module, a tensor or an iterable of tensors")


def clip_grad_norm(parameters: torch.optim.Optimizer | nn.Module | Iterable[Tensor] | Tensor,
                   max_norm: float = 1.0, norm_type: float = 2.0, *,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> float:
    """Clip the gradients to global norm ``max_norm`` in place; return the norm before.

    A thin wrapper of ``torch.nn.utils.clip_grad_norm_`` (same arguments, same math) that
    also takes an optimizer, so exactly the optimized parameters are clipped, and returns
    the pre-clip norm as a float to log or plot. That float costs one device-to-host sync
    per call; call torch's function directly to keep the norm on the device.
    ``max_norm=math.inf`` measures the norm without clipping.

        >>> loss.backward()
        >>> grad_norm = clip_grad_norm(optimizer, max_norm=1.0)
        >>> optimizer.step()
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) \
            or math.isnan(max_norm) or max_norm <= 0:
        raise ArgumentError(f"{OWNER}: max_norm={max_norm!r} is invalid; valid: max_norm > 0 "
                            "(math.inf: measure only)")
    total = torch.nn.utils.clip_grad_norm_(_tensors(parameters), max_norm, norm_type,
                                           error_if_nonfinite=error_if_nonfinite,
                                           foreach=foreach)
    return float(total)
