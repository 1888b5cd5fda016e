"""optimlab.RMSprop(preset="timm_tf") against timm's RMSpropTF itself, in fp64: same
problem, same gradients, same lr schedule, 60 steps, every step within 1e-10.

timm is an optional peer, installed without its dependencies (``pip install --no-deps
timm``: its torchvision dependency would replace the pinned torch). ``import timm.optim``
then fails, because timm's package imports torchvision for its models; RMSpropTF itself
needs only torch, so its module (timm/optim/rmsprop_tf.py, unmodified, with its two
helper modules) is loaded from the installed package without running timm/__init__.py.
Without timm these tests skip, saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from conformance import Problem, assert_conforms, make_problem, run_torch_style, timm_class

RMSpropTF = timm_class("rmsprop_tf", "RMSpropTF")


@dataclass(frozen=True)
class TimmCase:
    theirs: dict[str, Any] = field(default_factory=dict)  # RMSpropTF(params, lr, **theirs)
    ours: dict[str, Any] = field(default_factory=dict)  # RMSprop(preset="timm_tf", **ours)

    @property
    def id(self) -> str:
        return f"RMSpropTF({', '.join(f'{k}={v}' for k, v in self.theirs.items())})"


CASES = [
    TimmCase(),
    TimmCase({"momentum": 0.9}, {"momentum": 0.9}),
    TimmCase({"centered": True, "eps": 1e-3}, {"centered": True, "eps": 1e-3}),
    TimmCase({"momentum": 0.5, "centered": True, "alpha": 0.95, "weight_decay": 0.05},
             {"momentum": 0.5, "centered": True, "alpha": 0.95, "weight_decay": 0.05}),
    TimmCase({"momentum": 0.9, "weight_decay": 0.05, "decoupled_decay": True},
             {"momentum": 0.9, "weight_decay": 0.05, "weight_decay_form": "decoupled"}),
    TimmCase({"momentum": 0.9, "lr_in_momentum": False}, {"momentum": 0.9,
                                                           "lr_in_momentum": False}),
]


def run_timm(problem: Problem, case: TimmCase) -> list[list[torch.Tensor]]:
    return run_torch_style(problem, lambda params: RMSpropTF(params, lr=problem.lrs[0],
                                                             **case.theirs))


@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_preset_timm_tf_follows_timm_rmsprop_tf(case: TimmCase, foreach: bool,
                                                seed: int) -> None:
    problem = make_problem(seed, peak_lr=0.01)
    theirs = run_timm(problem, TimmCase({**case.theirs, "foreach": foreach}))
    assert theirs[-1][0].dtype == torch.float64
    assert_conforms(problem, "RMSprop", {"preset": "timm_tf", **case.ours}, theirs,
                    torch_differs=True)
