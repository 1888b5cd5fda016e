"""On a CUDA device: torch's fused kernels take torch's configurations (their step
counters live on the device, where the kernels read them), and every engine follows the
reference engine. Skipped where no CUDA device exists; the meta device stands in for
one in tests/test_drop_in_edges.py."""

from __future__ import annotations

import pytest
import torch
from cases import CASES, optimizer_class, torch_class

from optimlab import engines

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device on this machine")
SHAPES = [(3, 5), (7,), (4100,)]


def _params(seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=generator).cuda().requires_grad_() for s in SHAPES]


@pytest.mark.parametrize(("name", "kwargs"), [("SGD", {"momentum": 0.9}), ("Adam", {}),
                                              ("AdamW", {"amsgrad": True})])
def test_fused_kernels_run_on_cuda_as_torch_runs_them(name, kwargs, seed) -> None:
    ours, theirs = _params(seed), _params(seed)
    mine = optimizer_class(name)(ours, lr=0.01, **kwargs)
    other = torch_class(name)(theirs, lr=0.01, fused=True, **kwargs)
    generator = torch.Generator().manual_seed(seed + 1)
    for _ in range(5):
        for p, q in zip(ours, theirs, strict=True):
            p.grad = torch.randn(p.shape, generator=generator).cuda()
            q.grad = p.grad.clone()
        mine.step()
        other.step()
    assert mine.engines_used() == {"native": len(ours)}
    for p, q in zip(ours, theirs, strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("engine", [e for e in engines.ENGINES if e != "reference"])
@pytest.mark.parametrize("case", CASES[::5], ids=lambda c: c.id)
def test_every_engine_follows_the_reference_engine_on_cuda(case, engine, seed) -> None:
    results = []
    for name in ("reference", engine):
        params = _params(seed)
        optimizer = case.build(params, engine=name)
        generator = torch.Generator().manual_seed(seed + 1)
        for _ in range(5):
            for p in params:
                p.grad = torch.randn(p.shape, generator=generator).cuda()
            optimizer.step()
        results.append(params)
    for p, q in zip(*results, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
