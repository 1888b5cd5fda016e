"""Step time of LAMB (a rule that is not elementwise: per-tensor trust ratios and a global
clip) and of Lion (elementwise) beside the implementations people use, on the gpt-small
and char-transformer shapes, in one process:

    optimlab.Lamb  engine auto | compiled | reference  timm.optim.Lamb (foreach)
    optimlab.Lion  engine auto                       timm.optim.Lion (foreach), lion_pytorch.Lion

    .venv/bin/python benchmarks/structured.py                      # both shapes
    .venv/bin/python benchmarks/structured.py --shapes char-transformer --rounds 9

Every variant steps its own copy of the same parameters with the same gradients (random,
fixed, shared read-only). After the first step (reported: it includes compiling), the
variants run in interleaved rounds (the order rotated each round), each round timing
``--steps`` steps of each; a round's figure is its median step. Ratios are taken within a
round (ours over the peer, so a shared machine's drift falls on both alike) and reported
as the median over rounds with their range. timm loads without torchvision through
tests/conformance.py; lion_pytorch is ``pip install --no-deps lion-pytorch``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

import optimlab

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

#: GPT-2-small-like: 25.2M params in 150 tensors (optimlab.lab.bench.gpt_small_like)
GPT_SMALL = [(5000, 768), *([(768, 768)] * 4 + [(768, 3072), (3072, 768)]) * 3,
             *[(768,)] * 131]
#: the lab's char-transformer, TinyGPT over a 103-character alphabet: 117k params in 30
#: tensors (optimlab.lab.bench.char_transformer)
_BLOCK = [(64,), (64,), (192, 64), (192,), (64, 64), (64,), (64,), (64,), (256, 64), (256,),
          (64, 256), (64,)]
CHAR_TRANSFORMER = [(103, 64), (64, 64), *_BLOCK * 2, (64,), (64,), (103, 64), (103,)]
SHAPES = {"gpt-small": GPT_SMALL, "char-transformer": CHAR_TRANSFORMER}
Maker = Callable[[list[torch.Tensor]], torch.optim.Optimizer]
#: (ours, the peer it is compared with)
COMPARISONS = [("optimlab Lamb auto", "timm Lamb (foreach)"),
               ("optimlab Lamb compiled", "timm Lamb (foreach)"),
               ("optimlab Lamb reference", "timm Lamb (foreach)"),
               ("optimlab Lion auto", "timm Lion (foreach)"),
               ("optimlab Lion auto", "lion_pytorch Lion")]


def variants() -> dict[str, Maker]:
    """Each variant by name: how it is made over a list of params."""
    from conformance import timm_class

    timm_lamb, timm_lion = timm_class("lamb", "Lamb"), timm_class("lion", "Lion")
    lamb = dict(lr=1e-3, weight_decay=0.01)
    lion = dict(lr=1e-4, weight_decay=0.1)
    found: dict[str, Maker] = {
        "timm Lamb (foreach)": lambda ps: timm_lamb(ps, foreach=True, **lamb),
        "optimlab Lamb auto": lambda ps: optimlab.Lamb(ps, **lamb),
        "optimlab Lamb compiled": lambda ps: optimlab.Lamb(ps, engine="compiled", **lamb),
        "optimlab Lamb reference": lambda ps: optimlab.Lamb(ps, engine="reference", **lamb),
        "timm Lion (foreach)": lambda ps: timm_lion(ps, foreach=True, **lion),
        "optimlab Lion auto": lambda ps: optimlab.Lion(ps, **lion),
    }
    try:
        from lion_pytorch import Lion
    except ImportError:
        print("lion_pytorch is not installed (pip install --no-deps lion-pytorch): left out")
    else:
        found["lion_pytorch Lion"] = lambda ps: Lion(ps, **lion)
    return found


def measure(shape_name: str, rounds: int, steps: int) -> None:
    """First step, then ``rounds`` interleaved rounds of ``steps`` steps of every variant."""
    generator = torch.Generator().manual_seed(0)
    shapes = SHAPES[shape_name]
    start = [torch.randn(s, generator=generator) for s in shapes]
    grads = [torch.randn(s, generator=generator) * 1e-2 for s in shapes]
    made = []
    for name, make in variants().items():
        params = [torch.nn.Parameter(p.clone()) for p in start]
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        optimizer = make(params)
        began = time.perf_counter()
        optimizer.step()
        first = time.perf_counter() - began
        used = getattr(optimizer, "engines_used", dict)()
        print(f"{shape_name}: {name}: first step {first:.2f} s {used or ''}", flush=True)
        made.append((name, optimizer))
    per_round: dict[str, list[float]] = {name: [] for name, _ in made}
    for r in range(rounds):
        for name, optimizer in made[r % len(made):] + made[:r % len(made)]:
            times = []
            for _ in range(steps):
                began = time.perf_counter()
                optimizer.step()
                times.append(time.perf_counter() - began)
            per_round[name].append(statistics.median(times))
    _report(shape_name, per_round)


def _report(shape_name: str, per_round: dict[str, list[float]]) -> None:
    def ms(times: list[float]) -> str:
        return (f"{1e3 * statistics.median(times):.2f} "
                f"({1e3 * min(times):.2f}–{1e3 * max(times):.2f})")

    print(f"\n### {shape_name}\n")
    print("| variant | median step, ms (range over rounds) |\n| --- | --- |")
    for name, times in per_round.items():
        print(f"| {name} | {ms(times)} |")
    print("\n| ours | peer | ratio: median (range over rounds) |\n| --- | --- | --- |")
    for ours, peer in COMPARISONS:
        if ours in per_round and peer in per_round:
            ratios = [a / b for a, b in zip(per_round[ours], per_round[peer], strict=True)]
            print(f"| {ours} | {peer} | {statistics.median(ratios):.2f}× "
                  f"({min(ratios):.2f}–{max(ratios):.2f}) |")
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch's intra-op threads (1: on a loaded machine, 2 threads "
                             "spin against each other's OpenMP waits)")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    for shape_name in arguments.shapes:
        measure(shape_name, arguments.rounds, arguments.steps)


if __name__ == "__main__":
    main()
