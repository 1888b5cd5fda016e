"""PyTorch's own optimizer test configurations, on optimlab's classes.

torch ships its optimizer test registry in the wheel: ``optim_db`` in
``torch/testing/_internal/common_optimizers.py``, one ``OptimizerInfo`` per class with
``optim_inputs_func`` (the sample configurations torch's own test_optim.py runs every
class through) and ``optim_error_inputs_func`` (the inputs it must refuse). Here each
registry class with a torch twin is driven through them on the CPU:

* every sample configuration, fp32 and fp64, beside torch's class on the same gradients,
  with torch's state dict loaded into a fresh optimlab optimizer mid-run and, later,
  optimlab's loaded into a fresh torch one: the trajectories continue as one;
* every error input refused with torch's error type; where torch's message names a
  hyperparameter, ours names the argument and its valid range. Two differences, on
  purpose: a parameter given twice in one group, which torch warns about and then steps
  twice, optimlab refuses; and what torch refuses only because its foreach kernels cannot
  take it (Adam's tensor lr or tensor betas with ``foreach=True``), optimlab takes, as
  its engines do not have those limits.
"""

from __future__ import annotations

import copy

import pytest
import torch
from cases import NAMES, taken_shape
from torch.nn import Parameter
from torch.testing._internal.common_optimizers import OptimizerErrorEnum, optim_db

import optimlab
from optimlab.rules import MATRIX

INFOS = {info.optim_cls.__name__: info for info in optim_db}
COVERED = [name for name in NAMES if name in INFOS]
STEPS, TO_OURS, TO_TORCH = 12, 4, 8
SHAPES = [(5,), (3, 4), ()]
TOLERANCE = {torch.float64: {"rtol": 1e-10, "atol": 1e-12},
             torch.float32: {"rtol": 1e-5, "atol": 1e-6}}

SAMPLES = [pytest.param(name, sample.kwargs, id=f"{name}-{sample.desc}")
           for name in COVERED for sample in INFOS[name].optim_inputs_func(device="cpu")]
ERRORS = [pytest.param(name, error, id=f"{name}-{error.optimizer_error_input.desc}")
          for name in COVERED
          for error in INFOS[name].optim_error_inputs_func(device="cpu", dtype=torch.float32)]


def test_every_new_class_has_torch_samples() -> None:
    assert {"NAdam", "RAdam", "Adamax", "Adadelta", "Rprop", "ASGD"} <= set(COVERED)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(("name", "kwargs"), SAMPLES)
def test_torch_sample_configuration(name: str, kwargs: dict, dtype: torch.dtype,
                                    gen: torch.Generator) -> None:
    # a matrix rule (Muon) takes 2-D params only, as torch's does: the same sizes as matrices
    start = [torch.randn(taken_shape(getattr(optimlab, name), shape), dtype=dtype,
                         generator=gen) for shape in SHAPES]
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    mine = getattr(optimlab, name)(ours, **kwargs)
    other = getattr(torch.optim, name)(theirs, **kwargs)
    for step in range(1, STEPS + 1):
        for p, q in zip(ours, theirs, strict=True):
            p.grad = torch.randn(p.shape, dtype=dtype, generator=gen)
            q.grad = p.grad.clone()
        mine.step()
        other.step()
        if step == TO_OURS:  # torch's checkpoint continues in optimlab
            mine = getattr(optimlab, name)(ours, **kwargs)
            mine.load_state_dict(copy.deepcopy(other.state_dict()))
        if step == TO_TORCH:  # and optimlab's in torch
            other = getattr(torch.optim, name)(theirs, **kwargs)
            other.load_state_dict(copy.deepcopy(mine.state_dict()))
    for p, q in zip(ours, theirs, strict=True):
        # Muon's Newton–Schulz runs in bf16 whatever the params' dtype (torch's too): an
        # fp32 tensor lr then rounds differently from an fp64 float by ~1e-7
        matrix = getattr(optimlab, name).rule.structure == MATRIX
        torch.testing.assert_close(p.detach(), q.detach(),
                                   **TOLERANCE[torch.float32 if matrix else dtype])
        assert not torch.equal(p.detach(), start[0]) or p.numel() != start[0].numel()
        assert sorted(mine.state[p]) == sorted(other.state[q])


def _kernel_limit(error) -> bool:
    """An input torch refuses for its foreach or capturable kernels' sake, not the math's."""
    return "foreach" in error.optimizer_error_input.desc or \
        "both floats or both Tensors" in error.optimizer_error_input.desc


@pytest.mark.parametrize(("name", "error"), ERRORS)
def test_torch_error_input_refused_alike(name: str, error) -> None:
    given = error.optimizer_error_input
    params = given.params if given.params is not None else [Parameter(torch.randn(2, 3))]
    cls = getattr(optimlab, name)
    if _kernel_limit(error):
        optimizer = cls(params, **given.kwargs)
        for group in optimizer.param_groups:
            for param in group["params"]:
                param.grad = torch.randn_like(param)
        optimizer.step()
        return
    duplicate_in_group = issubclass(error.error_type, Warning)
    expected = ValueError if duplicate_in_group else error.error_type
    if "complex" in given.desc and not cls.rule.elementwise:
        # refused at construction (ArgumentError), where torch waits for the first step
        expected = (expected, optimlab.ArgumentError)
    with pytest.raises(expected) as raised:
        if error.error_on == OptimizerErrorEnum.CONSTRUCTION_ERROR:
            cls(params, **given.kwargs)
        else:
            cls(params, **given.kwargs).step()
    message = str(raised.value)
    if duplicate_in_group:
        assert "already earlier in the same group" in message
    if error.error_regex.startswith("Invalid"):  # a hyperparameter: named, with its range
        assert "valid:" in message
        assert any(key in message for key in given.kwargs if key != "lr" or
                   "learning rate" in error.error_regex), message
