"""The generated kernels in a process: the disk cache, threads, torch's OpenMP runtime, DDP.

* Two processes building the same kernel at once both end with a whole library, and a
  later process loads it without building.
* The kernel runs on ``torch.get_num_threads()`` threads, split by element count, and
  uses torch's own libgomp: one OpenMP runtime in the process and no thread beyond
  torch's pool.
* In DDP (gloo) worker processes, each building into one fresh cache at once, the kernel
  steps what the eager rule steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from optimlab import ckernel, rules

pytestmark = pytest.mark.skipif(not ckernel.available(), reason="no C compiler")

ADAM_OPTIONS = {"maximize": False, "weight_decay_form": "decoupled",
                "eps_placement": "outside"}
ADAM_NUMBERS = ("lr", "beta1", "beta2", "eps", "weight_decay", "eps_root",
                "bias_correction1", "bias_correction2")
ADAM_STEP = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1,
             "eps_root": 0.0, "bias_correction1": 0.1, "bias_correction2": 1e-3}
KEYS = ("exp_avg", "exp_avg_sq")

BUILD_SCRIPT = """
import json, sys, torch
from optimlab import ckernel, rules
from optimlab.ckernel import build
kernel = ckernel.kernel_for(rules.adam, {options!r}, {numbers!r}, {keys!r},
                            ["bf16", "8bit"], torch.float32)
print(json.dumps({{"builds": len(build.builds), "path": str(kernel.path)}}))
"""


def _build_in_a_process(cache: Path) -> subprocess.Popen:
    script = BUILD_SCRIPT.format(options=ADAM_OPTIONS, numbers=ADAM_NUMBERS, keys=KEYS)
    environment = {**os.environ, "OPTIMLAB_KERNEL_CACHE": str(cache)}
    return subprocess.Popen([sys.executable, "-c", script], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_processes_building_at_once_each_get_a_whole_library_that_a_later_one_loads(
        tmp_path: Path) -> None:
    """Two processes build the same kernel into one empty cache at once: one library, no
    temporary left behind; a third process loads it without building."""
    processes = [_build_in_a_process(tmp_path) for _ in range(2)]
    results = [_result(p) for p in processes]
    assert len({r["path"] for r in results}) == 1
    built = Path(results[0]["path"])
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".so"] == [built.name]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".build-")]
    assert built.with_suffix(".c").exists()
    stamp = built.stat().st_mtime_ns
    later = _result(_build_in_a_process(tmp_path))
    assert later["builds"] == 0 and later["path"] == str(built)
    assert built.stat().st_mtime_ns == stamp


def _adam_kernel(storage: str = "f32") -> ckernel.Kernel:
    return ckernel.kernel_for(rules.adam, ADAM_OPTIONS, ADAM_NUMBERS, KEYS,
                              [storage, storage], torch.float32)


def _tensors(sizes: list[int], gen: torch.Generator):
    params = [torch.randn(n, generator=gen) for n in sizes]
    grads = [torch.randn(n, generator=gen) for n in sizes]
    stored = [[0.1 * torch.randn(n, generator=gen), torch.rand(n, generator=gen)]
              for n in sizes]
    return params, grads, stored


@pytest.fixture
def threads():
    """Restores torch's thread count after the test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_kernel_runs_on_torchs_thread_count(threads, gen) -> None:
    kernel = _adam_kernel()
    params, grads, stored = _tensors([1 << 18, 1 << 17], gen)
    for count in (1, 2):
        torch.set_num_threads(count)
        kernel(params, grads, stored, ADAM_STEP)
        assert kernel.last_team == count
        assert sum(kernel.last_split) == (1 << 18) + (1 << 17)


def test_work_is_split_by_elements_not_by_tensor(threads, gen) -> None:
    """One big tensor and a hundred small ones: each of two threads gets half the
    elements (to a cache line), not half the tensors."""
    torch.set_num_threads(2)
    kernel = _adam_kernel()
    sizes = [1 << 20] + [300] * 100
    params, grads, stored = _tensors(sizes, gen)
    kernel(params, grads, stored, ADAM_STEP)
    assert kernel.last_team == 2
    half = sum(sizes) / 2
    assert all(abs(part - half) <= 64 for part in kernel.last_split), kernel.last_split


def _openmp_runtimes() -> set[str]:
    with open("/proc/self/maps") as maps:
        return {line.split()[-1] for line in maps if "libgomp" in line or "libomp" in line
                or "libiomp" in line}


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
def test_one_openmp_runtime_and_no_threads_beyond_torchs(threads, gen) -> None:
    """The kernel brings no OpenMP runtime of its own (other packages may have loaded
    theirs, e.g. scikit-learn's bundled libgomp) and starts no thread beyond torch's pool."""
    torch.set_num_threads(2)
    big = torch.randn(1 << 22, generator=gen)
    (big + big).sum()  # torch's own parallel regions start its OpenMP pool
    loaded_before = _openmp_runtimes()
    kernel = _adam_kernel("bf16")
    params, grads, _ = _tensors([1 << 20], gen)
    stored = [[torch.zeros(1 << 20, dtype=torch.bfloat16) for _ in KEYS]]
    before = len(os.listdir("/proc/self/task"))
    for _ in range(5):
        kernel(params, grads, stored, ADAM_STEP)
        (big + big).sum()
    assert kernel.last_team == 2
    assert len(os.listdir("/proc/self/task")) == before
    assert _openmp_runtimes() == loaded_before
    torchs = ckernel.build.torch_openmp()
    if torchs is not None:
        assert torchs.resolve() in {Path(path).resolve() for path in loaded_before}


def test_the_floor_kernel_moves_the_bytes_and_changes_nothing(gen) -> None:
    params, grads, stored = _tensors([1000, 4097], gen)
    codes = [[torch.randint(-127, 128, (p.numel(),), dtype=torch.int8, generator=gen),
              torch.rand((p.numel() + 255) // 256, generator=gen)] for p in params]
    for storages, state in ((["f32", "f32"], stored), (["8bit", "8bit"], None)):
        floor = ckernel.floor_kernel(KEYS, storages, torch.float32)
        state = state or [[c, s, c.clone().view(torch.uint8).clone(), s.clone()]
                          for c, s in codes]
        before = [[t.clone() for t in parts] for parts in state]
        kept = [p.clone() for p in params]
        floor(params, grads, state, {"zero": 0.0})
        assert all(torch.equal(p, q) for p, q in zip(params, kept, strict=True))
        assert all(torch.equal(a, b) for x, y in zip(state, before, strict=True)
                   for a, b in zip(x, y, strict=True))


# --- DDP workers --------------------------------------------------------------------------

WORLD = 2


def _ddp_worker(rank: int, folder: str) -> None:
    os.environ["OPTIMLAB_KERNEL_CACHE"] = str(Path(folder) / "cache")  # one, empty
    torch.set_num_threads(2)
    store = dist.FileStore(str(Path(folder) / "store"), WORLD)  # no port to race for
    dist.init_process_group("gloo", store=store, rank=rank, world_size=WORLD,
                            timeout=timedelta(seconds=120))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 4096), torch.nn.Tanh(),
                                torch.nn.Linear(4096, 4))  # 283k elements: two threads
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    params = list(model.parameters())
    kernel = _adam_kernel()
    stored = [[torch.zeros_like(p), torch.zeros_like(p)] for p in params]
    eager = [p.detach().clone() for p in params]
    eager_state = [{"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
                   for p in params]
    generator = torch.Generator().manual_seed(1 + rank)
    errors = []
    for step in range(1, 4):
        x = torch.randn(32, 64, generator=generator)
        ddp.zero_grad()
        ddp(x).square().mean().backward()
        numbers = {**ADAM_STEP, "bias_correction1": 1 - 0.9 ** step,
                   "bias_correction2": 1 - 0.999 ** step}
        with torch.no_grad():
            grads = [p.grad for p in params]
            for value, grad, state in zip(eager, grads, eager_state, strict=True):
                new, moments = rules.adam(value, grad, state, {**ADAM_OPTIONS, **numbers})
                value.copy_(new)
                state.update(moments)
            kernel([p.data for p in params], grads, stored, numbers)
        errors.append(max((p.detach() - q).abs().max().item()
                          for p, q in zip(params, eager, strict=True)))
    dist.barrier()
    Path(folder, f"rank{rank}.json").write_text(json.dumps(
        {"errors": errors, "team": kernel.last_team,
         "params": [p.detach().sum().item() for p in params]}))
    dist.destroy_process_group()


def test_ddp_gloo_workers_build_and_step_with_the_kernel(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    for report in ranks:
        assert max(report["errors"]) < 1e-6 and report["team"] == 2, report
    assert ranks[0]["params"] == ranks[1]["params"]  # DDP kept the ranks in step
