"""Schedule-free AdamW and SGD: optimlab's step beside facebookresearch's ``schedulefree``
package (foreach and for-loop) on the gpt-small and char-transformer shapes, in one process.

    .venv/bin/python benchmarks/schedulefree_step.py     # both shapes, ~3 min on 2 cores
    .venv/bin/python benchmarks/schedulefree_step.py --threads 1 --engines auto compiled

On a machine shared with other work, ``--threads 1``: with two threads, each parallel op
ends at a barrier that waits for a descheduled thread, and a step of ten foreach ops (the
package's) can take 100× its time.

As ``optimlab bench`` does (optimlab/lab/bench.py): the same params for every variant,
interleaved rounds (5 rounds × 4 steps, median), the caches flushed before each timed step,
each variant beside its same-traffic floor (a generated loop that reads and writes what the
step does, with trivial arithmetic). One difference: the package divides the gradients in
place at each step (its "memory efficiency"), so that over shared gradients they would
grow step after step; here every timed step starts from the same gradients, copied back
outside the timed region.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import schedulefree
import torch

import optimlab
from optimlab.lab import bench
from optimlab.lab.bench.steps import FloorStep

CLASSES = (("AdamWScheduleFree", 2), ("SGDScheduleFree", 1))  # (name, fp32 states)


def _package(name: str, foreach: bool) -> Any:
    def build(params: list[torch.Tensor]) -> Any:
        optimizer = getattr(schedulefree, name)(params, foreach=foreach)
        optimizer.train()  # the package refuses to step before train()
        return optimizer
    return build


def variants(engines: list[str]) -> list[tuple[str, Any]]:
    chosen = []
    for name, states in CLASSES:
        chosen += [(f"schedulefree {name} foreach", _package(name, True)),
                   (f"schedulefree {name} for-loop", _package(name, False))]
        chosen += [(f"optimlab {name} {engine}",
                    lambda params, name=name, engine=engine: getattr(optimlab, name)(
                        params, engine=engine)) for engine in engines]
        chosen.append((f"same-traffic floor: {states} fp32 state{'s' * (states > 1)}",
                       lambda params, states=states: FloorStep(params, states, None)))
    return chosen


def measure(shapes: list[tuple[int, ...]], chosen: list[tuple[str, Any]], rounds: int,
            steps: int) -> dict[str, list[float]]:
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator) * 0.02) for s in shapes]
    grads = [torch.randn(s, generator=generator) * 1e-3 for s in shapes]
    for param, grad in zip(params, grads, strict=True):
        param.grad = grad.clone()
    flush = torch.zeros(bench.FLUSH_BYTES, dtype=torch.uint8)
    built = [(label, build(params)) for label, build in chosen]
    times: dict[str, list[float]] = {label: [] for label, _ in chosen}
    for round_ in range(rounds + 1):  # round 0: the first steps (building kernels), untimed
        for label, optimizer in built:
            for _ in range(steps if round_ else 1):
                torch._foreach_copy_([p.grad for p in params], grads)
                flush.add_(1)
                start = time.perf_counter()
                optimizer.step()
                if round_:
                    times[label].append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["char-transformer", "gpt-small"])
    parser.add_argument("--engines", nargs="+", default=["auto"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(bench.header(bench.bandwidth()))
    for shape in args.shapes:
        shapes = bench.SHAPES[shape]()
        numel = sum(torch.Size(s).numel() for s in shapes)
        times = measure(shapes, variants(args.engines), args.rounds, args.steps)
        ms = {label: 1e3 * statistics.median(values) for label, values in times.items()}
        print(f"\n{shape}: {numel / 1e6:.3g}M params in {len(shapes)} tensors\n")
        print("| step | ms/step | vs the package's foreach step | vs its for-loop step |")
        print("| --- | --- | --- | --- |")
        for label, value in ms.items():
            name = next((n for n, _ in CLASSES if n in label), None)
            cells = [f"{value / ms[f'schedulefree {name} {kind}']:.2f}" if name else "—"
                     for kind in ("foreach", "for-loop")]
            print(f"| {label} | {value:.3g} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
