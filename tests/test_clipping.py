"""optimlab.clip_grad_norm: torch's clip_grad_norm_ behind one call that takes an optimizer, a
module, a tensor or an iterable, and refuses what it cannot clip."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import optimlab


def random_grads(shapes=((5, 3), (7,), (2, 2, 2)), scale=3.0, seed=0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    params = [torch.randn(shape, generator=generator, requires_grad=True) for shape in shapes]
    for p in params:
        p.grad = scale * torch.randn(p.shape, generator=generator)
    return params


def test_clip_returns_the_pre_clip_norm_and_clips_as_torch_does():
    params = random_grads()
    twins = [p.detach().clone().requires_grad_() for p in params]
    for p, twin in zip(params, twins, strict=True):
        twin.grad = p.grad.clone()
    expected = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params))
    norm = optimlab.clip_grad_norm(params, max_norm=1.0)
    torch_norm = torch.nn.utils.clip_grad_norm_(twins, max_norm=1.0)
    assert isinstance(norm, float)
    assert norm == pytest.approx(expected, rel=1e-6) == float(torch_norm)
    for p, twin in zip(params, twins, strict=True):
        assert torch.equal(p.grad, twin.grad)
    clipped = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params))
    assert clipped == pytest.approx(1.0, rel=1e-5)


def test_clip_takes_an_optimizer_a_module_a_tensor_or_an_iterable():
    module = nn.Linear(6, 4)
    generator = torch.Generator().manual_seed(2)
    for p in module.parameters():
        p.grad = torch.randn(p.shape, generator=generator)
    grads = [p.grad.clone() for p in module.parameters()]
    optimizer = optimlab.SGD(module.parameters(), lr=0.1)
    values = []
    for source in (optimizer, module, module.parameters(), list(module.parameters())):
        for p, grad in zip(module.parameters(), grads, strict=True):
            p.grad = grad.clone()
        values.append(optimlab.clip_grad_norm(source, 0.5))
    assert values == [values[0]] * 4
    single = random_grads(shapes=((4, 4),))[0]
    assert optimlab.clip_grad_norm(single, 1e9) == pytest.approx(float(single.grad.norm()))


def test_clip_through_an_optimizer_touches_only_its_parameters():
    inside, outside = random_grads(shapes=((4, 3),), seed=5)[0], random_grads(seed=6)[0]
    before = outside.grad.clone()
    optimizer = optimlab.AdamW([inside])
    norm = optimlab.clip_grad_norm(optimizer, max_norm=0.1)
    assert norm == pytest.approx(float(inside.grad.norm() * norm / 0.1), rel=1e-4)
    assert float(inside.grad.norm()) == pytest.approx(0.1, rel=1e-4)
    assert torch.equal(outside.grad, before)


def test_infinite_max_norm_measures_without_clipping_and_small_norms_stay():
    params = random_grads()
    grads = [p.grad.clone() for p in params]
    norm = optimlab.clip_grad_norm(params, max_norm=math.inf)
    assert norm > 1.0
    assert all(torch.equal(p.grad, g) for p, g in zip(params, grads, strict=True))
    assert optimlab.clip_grad_norm(params, max_norm=2 * norm) == pytest.approx(norm)
    assert all(torch.equal(p.grad, g) for p, g in zip(params, grads, strict=True))


def test_clip_passes_norm_type_and_nonfinite_check_to_torch():
    params = random_grads()
    largest = max(float(p.grad.abs().max()) for p in params)
    assert optimlab.clip_grad_norm(params, 1e9, norm_type=math.inf) == pytest.approx(largest)
    params[0].grad[0, 0] = math.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        optimlab.clip_grad_norm(params, 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("max_norm", [0, -1.0, math.nan, "1.0", True])
def test_clip_refuses_a_bad_max_norm(max_norm):
    with pytest.raises(optimlab.ArgumentError, match=r"clip_grad_norm: max_norm=.* is invalid; "
                       r"valid: max_norm > 0"):
        optimlab.clip_grad_norm(random_grads(), max_norm)


def test_clip_refuses_what_has_no_parameters():
    with pytest.raises(optimlab.ArgumentError, match="clip_grad_norm: parameters is a int"):
        optimlab.clip_grad_norm(3, 1.0)


