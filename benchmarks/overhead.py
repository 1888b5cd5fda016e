"""The Python time of one C-kernel step over 150 tensors (optimlab.ckernel).

The tensors have 10 elements each, so the C loop costs next to nothing and what is timed
is the call: reading the gradients' pointers and checking them, the numbers, ctypes.
Three ways to call, best of 20 repeats of 2,000 calls each:

* ``Bound.step(numbers)``: the bound params' ``.grad`` (the engine's way);
* ``Bound(grads, numbers)``: gradients passed in, each checked (dtype, size, layout);
* ``kernel(params, grads, stored, numbers)``: the same, finding its binding first;

beside the bare ctypes call of the C function (no pointers refreshed).

    .venv/bin/python benchmarks/overhead.py
"""

from __future__ import annotations

import time

import torch

from optimlab import ckernel, rules

OPTIONS = {"maximize": False, "weight_decay_form": "decoupled", "eps_placement": "outside"}
NUMBERS = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01,
           "eps_root": 0.0, "bias_correction1": 0.1, "bias_correction2": 0.001}


def best_microseconds(call, repeats: int = 20, number: int = 2000) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def main() -> None:
    kernel = ckernel.kernel_for(rules.adam, OPTIONS, tuple(NUMBERS), ("exp_avg", "exp_avg_sq"),
                                ["f32", "f32"], torch.float32)
    params = [torch.nn.Parameter(torch.randn(10)) for _ in range(150)]
    for p in params:
        p.grad = torch.randn(10)
    stored = [[torch.zeros(10), torch.zeros(10)] for _ in params]
    bound = kernel.bind(params, stored)
    grads = [p.grad for p in params]
    threads = torch.get_num_threads()
    times = {
        "Bound.step(numbers)": best_microseconds(lambda: bound.step(NUMBERS)),
        "Bound(grads, numbers)": best_microseconds(lambda: bound(grads, NUMBERS)),
        "kernel(params, grads, stored, numbers)": best_microseconds(
            lambda: kernel(params, grads, stored, NUMBERS)),
        "ctypes call alone": best_microseconds(lambda: kernel.function(
            150, bound._ptrs, bound._offsets, bound._numbers, threads)),
    }
    for label, microseconds in times.items():
        print(f"| {label} | {microseconds:.1f} µs |")


if __name__ == "__main__":
    main()
