"""Schedule-free AdamW and SGD: optimlab's step beside facebookresearch's ``schedulefree``
package (foreach and for-loop) on the gpt-small and char-transformer shapes, in the same
process, with the timing of ``optimlab bench`` (optimlab/lab/bench.py: interleaved rounds,
caches flushed, median; each variant beside its same-traffic floor).

    .venv/bin/python benchmarks/schedulefree.py                 # both shapes, ~2 min on 2 cores
    .venv/bin/python benchmarks/schedulefree.py --shapes char-transformer --device cuda

The package divides the shared gradients in place at each of its steps (its "memory
efficiency"); the values then stay of order one, which changes no variant's time.
"""

from __future__ import annotations

import argparse
from typing import Any

import schedulefree
import torch

import optimlab
from optimlab.lab import bench
from optimlab.lab.bench_variants import Variant

PEER = "schedulefree AdamWScheduleFree foreach"


def _package(name: str, foreach: bool) -> Any:
    def build(params: list[torch.Tensor]) -> Any:
        optimizer = getattr(schedulefree, name)(params, foreach=foreach)
        optimizer.train()  # the package refuses to step before train()
        return optimizer
    return build


def _ours(name: str, engine: str) -> Any:
    return lambda params: getattr(optimlab, name)(params, engine=engine)


def variants(engines: list[str]) -> list[Variant]:
    chosen = []
    for name, states in (("AdamWScheduleFree", 2), ("SGDScheduleFree", 1)):
        traffic = (states, None)
        chosen += [Variant(f"schedulefree {name} foreach", _package(name, True), traffic,
                           name, peer=True),
                   Variant(f"schedulefree {name} for-loop", _package(name, False), traffic,
                           name, peer=True)]
        chosen += [Variant(f"optimlab {name} {engine}", _ours(name, engine), traffic, name)
                   for engine in engines]
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["char-transformer", "gpt-small"])
    parser.add_argument("--engines", nargs="+", default=["auto"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_default_device(args.device)
    print(bench.header(bench.bandwidth()) if args.device == "cpu" else
          f"device {torch.cuda.get_device_name()}, torch {torch.__version__}")
    for shape in args.shapes:
        shapes = bench.SHAPES[shape]()
        measured, triad = bench.measure(shapes, variants(args.engines), args.rounds,
                                        progress=lambda line: None)
        print()
        print(bench.table(shape, shapes, measured, triad))
        base = {m.variant.algorithm: m.ms for m in measured
                if m.variant.label.endswith("foreach")}
        for m in measured:
            if m.variant.label.startswith("optimlab"):
                print(f"{shape}: {m.variant.label}: {m.ms:.3g} ms, "
                      f"{m.ms / base[m.variant.algorithm]:.2f}x the package's foreach step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
