"""The optimizer's own time per step on the char-transformer's 30 tensors: a step of
``optimlab.AdamW`` (default engine: the generated C kernel) beside the same bound kernel
called directly, in CPU time of the calling thread (one thread; a shared machine's other
work does not count), best of 15 repeats of 500 steps each, warm caches.

    .venv/bin/python benchmarks/step_overhead.py            # lr constant
    .venv/bin/python benchmarks/step_overhead.py --schedule # LambdaLR writing lr each step

The ratio is the step over the kernel alone: what the per-step Python (hooks, the
group's view, checks, the plan, counters) adds to the kernel's own call.
"""

from __future__ import annotations

import argparse
import time

import torch

import optimlab
from optimlab import ckernel
from optimlab.lab.bench import SHAPES


def best_microseconds(call, repeats: int = 15, number: int = 500) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        for _ in range(number):
            call()
        best = min(best, (time.thread_time() - start) / number)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedule", action="store_true",
                        help="a LambdaLR scheduler writes lr before each step")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator))
              for s in SHAPES["char-transformer"]()]
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator)
    optimizer = optimlab.AdamW(params, lr=1e-3, weight_decay=0.01)
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 / (1 + 1e-4 * s))
    kernel = ckernel.kernel_for(
        optimizer.rule.update, dict(optimizer.view(optimizer.param_groups[0]).config.options),
        (*optimizer.rule.numbers, *optimizer.rule.step_numbers), ("exp_avg", "exp_avg_sq"),
        ["f32", "f32"], torch.float32)
    stored = [[optimizer.state[p]["exp_avg"].clone(), optimizer.state[p]["exp_avg_sq"].clone()]
              for p in params]
    copies = [p.detach().clone() for p in params]
    grads = [p.grad for p in params]
    numbers = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01,
               "eps_root": 0.0, "bias_correction1": 0.1, "bias_correction2": 0.001}
    bound = kernel.bind(copies, stored)

    def step() -> None:
        if arguments.schedule:
            scheduler.step()
        optimizer.step()

    print(f"char-transformer: {len(params)} tensors, "
          f"{sum(p.numel() for p in params) / 1e3:.0f}k params; used: "
          f"{optimizer.engines_used()}; schedule: {arguments.schedule}")
    for _ in range(arguments.rounds):
        through, alone = best_microseconds(step), best_microseconds(lambda: bound(grads, numbers))
        print(f"step {through:6.1f} µs   kernel alone {alone:6.1f} µs   "
              f"ratio {through / alone:.2f}")


if __name__ == "__main__":
    main()
