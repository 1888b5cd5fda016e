"""``optimlab bench``: optimizer-step speed against torch.optim, in one process.

Every variant is set beside two references measured in the same rounds:

* torch's fused AdamW (the baseline of every ratio), and the fastest torch.optim step of
  the variant's own optimizer (for-loop, foreach or fused, whichever is fastest here);
* its **same-traffic floor**: a generated loop (optimlab.ckernel) that reads and writes
  exactly the arrays the step does (param, gradient, each state in its storage, 8-bit
  codes with their block scales) with trivial arithmetic, split over the same threads.
  "% of floor" is the floor's time over the variant's.

Variants run in interleaved rounds, so that the drift of a shared machine falls on all of
them alike, and the CPU caches are flushed (64 MiB written) before each timed step, so no
variant finds another's data, or its own, in cache: in training the forward and backward
passes evict it. Parameters and gradients are shared by all the variants of a shape
(random, fixed); each variant keeps its own state. The variants are in variants.py.

    optimlab bench                          # the GPT-small-like shape, the main variants
    optimlab bench --shapes all --variants all
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from optimlab.lab.bench.steps import FloorStep, Unavailable
from optimlab.lab.bench.variants import BASELINE, VARIANTS, Variant, describe_traffic

MB = 1 << 20
FLUSH_BYTES = 64 * MB  # twice the largest last-level cache of the machines we run on

__all__ = ["BASELINE", "SHAPES", "VARIANTS", "Measured", "Variant", "bandwidth",
           "chosen_variants", "measure", "run", "table"]


def gpt_small_like() -> list[tuple[int, ...]]:
    """25.2M params in 150 tensors: a 5000x768 embedding, 3 blocks of four 768x768
    projections and a 768x3072 / 3072x768 MLP, and 131 vectors of 768."""
    block = [(768, 768)] * 4 + [(768, 3072), (3072, 768)]
    return [(5000, 768), *block * 3, *[(768,)] * 131]


def char_transformer() -> list[tuple[int, ...]]:
    """The lab's char-transformer task: TinyGPT (2 blocks, width 64) over the characters
    of its corpus, 117k params in 30 tensors."""
    from optimlab.lab.workloads import datasets, models

    model = models.TinyGPT(len(datasets.text_corpus().alphabet))
    return [tuple(p.shape) for p in model.parameters()]


SHAPES: dict[str, Callable[[], list[tuple[int, ...]]]] = {
    "gpt-small": gpt_small_like,
    "char-transformer": char_transformer,
    "100m-8": lambda: [(3125, 4000)] * 8,
    "1m-2000": lambda: [(20, 25)] * 2000,
}


@dataclass
class Measured:
    variant: Variant
    first_step_s: float = 0.0
    times: list[float] = field(default_factory=list)
    state_bytes: int = 0

    @property
    def ms(self) -> float:
        return 1e3 * statistics.median(self.times)


def bandwidth(megabytes: int = 512, repeats: int = 5) -> dict[str, float]:
    """GB/s of ``dst.copy_(src)`` (read + write, counted as 2 bytes/byte) and of the
    in-place triad ``a += s·c`` (2 reads + 1 write), best of ``repeats``."""
    n = megabytes * MB // 4
    a, c = torch.rand(n), torch.rand(n)
    copy, triad = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        a.copy_(c)
        copy.append(time.perf_counter() - start)
        start = time.perf_counter()
        a.add_(c, alpha=0.5)
        triad.append(time.perf_counter() - start)
    return {"copy": 2 * 4 * n / min(copy) / 1e9, "triad": 3 * 4 * n / min(triad) / 1e9}


def _state_bytes(optimizer: Any) -> int:
    seen, total = set(), 0
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                storage = value.untyped_storage()
                if storage.data_ptr() not in seen:
                    seen.add(storage.data_ptr())
                    total += storage.nbytes()
    return total


def _floor_variants(variants: list[Variant]) -> list[Variant]:
    """One same-traffic floor per kind of traffic among ``variants``."""
    kinds = list(dict.fromkeys(v.traffic for v in variants))
    return [Variant(f"same-traffic floor: {describe_traffic(kind)}",
                    lambda params, kind=kind: FloorStep(params, *kind), kind, "floor")
            for kind in kinds]


def measure(shapes: list[tuple[int, ...]], variants: list[Variant], rounds: int = 5,
            steps: int = 4, progress: Callable[[str], None] = print) -> tuple[
                list[Measured], float]:
    """Time ``variants`` and their same-traffic floors on params of ``shapes``: first step
    (compile included), then ``rounds`` interleaved rounds of ``steps`` steps each, the
    caches flushed before every timed step. Returns the measurements (floors last) and the
    median in-place triad bandwidth (GB/s), measured once per round, for the header."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator) * 0.02) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator) * 1e-3
    flush = torch.zeros(FLUSH_BYTES, dtype=torch.uint8)
    built = []
    for variant in [*variants, *_floor_variants(variants)]:
        try:
            optimizer = variant.build(params)
            start = time.perf_counter()
            optimizer.step()
        except Unavailable as why:
            progress(f"{variant.label}: left out ({why})")
            continue
        measured = Measured(variant, time.perf_counter() - start, [],
                            _state_bytes(optimizer) if hasattr(optimizer, "state") else 0)
        progress(f"{variant.label}: first step {measured.first_step_s:.2f} s")
        built.append((optimizer, measured))
    triads = []
    for _ in range(rounds):
        for optimizer, measured in built:
            for _ in range(steps):
                flush.add_(1)
                start = time.perf_counter()
                optimizer.step()
                measured.times.append(time.perf_counter() - start)
        triads.append(bandwidth(megabytes=128, repeats=2)["triad"])
    results = [measured for _, measured in built]
    del built, params
    gc.collect()
    return results, statistics.median(triads)


def _fastest_torch(results: list[Measured]) -> dict[str, float]:
    fastest: dict[str, float] = {}
    for m in results:
        if m.variant.peer:
            algorithm = m.variant.algorithm
            fastest[algorithm] = min(fastest.get(algorithm, m.ms), m.ms)
    return fastest


def table(shape_name: str, shapes: list[tuple[int, ...]], results: list[Measured],
          triad_gbs: float) -> str:
    """The results as a markdown table: ms/step, ratios to torch fused AdamW and to the
    fastest torch.optim step of the same optimizer, the same-traffic floor and the
    fraction of it reached, first-step time and state bytes per parameter."""
    numel = sum(torch.Size(s).numel() for s in shapes)
    base = next((m.ms for m in results if m.variant.label == BASELINE), None)
    fastest = _fastest_torch(results)
    floors = {m.variant.traffic: m.ms for m in results if m.variant.algorithm == "floor"}
    lines = [f"{shape_name}: {numel / 1e6:.3g}M params in {len(shapes)} tensors; in-place "
             f"triad {triad_gbs:.1f} GB/s (median of one per round)", "",
             "| step | ms/step | vs torch fused AdamW | vs fastest torch.optim of its "
             "optimizer | same-traffic floor ms | % of floor | first step s | "
             "state B/param |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in results:
        floor = floors.get(m.variant.traffic)
        peer = fastest.get(m.variant.algorithm)
        cells = [m.variant.label, f"{m.ms:.3g}", f"{m.ms / base:.2f}" if base else "—",
                 f"{m.ms / peer:.2f}" if peer else "—",
                 f"{floor:.3g}" if floor else "—",
                 f"{100 * floor / m.ms:.0f}%" if floor else "—",
                 f"{m.first_step_s:.2f}", f"{m.state_bytes / numel:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chosen_variants(names: list[str] | None, everything: bool) -> list[Variant]:
    """The default set, all variants but the slow ones (Muon's Newton–Schulz on the CPU),
    or those whose label contains one of ``names``."""
    if names:
        picked = [v for v in VARIANTS if any(n.lower() in v.label.lower() for n in names)]
        baseline = [v for v in VARIANTS if v.label == BASELINE and v not in picked]
        return baseline + picked
    return [v for v in VARIANTS if not v.slow] if everything else [v for v in VARIANTS
                                                                    if v.main]


def run(shape_names: list[str], names: list[str] | None = None, everything: bool = False,
        rounds: int = 5, steps: int = 4, progress: Callable[[str], None] = print) -> str:
    """Measure and return the report (machine, bandwidth, one table per shape)."""
    variants = chosen_variants(names, everything)
    speeds = bandwidth()
    tables = []
    for name in shape_names:
        shapes = SHAPES[name]()
        results, triad = measure(shapes, variants, rounds, steps, progress)
        tables.append(table(name, shapes, results, triad))
    return header(speeds) + "\n\n" + "\n\n".join(tables)


def header(speeds: dict[str, float]) -> str:
    """When, on what, and the bandwidth measured."""
    return (f"optimlab bench, {time.strftime('%Y-%m-%d %H:%M')}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, {_cpu_name()}\n"
            f"bandwidth at the start: copy {speeds['copy']:.1f} GB/s (reads its destination "
            f"too), in-place triad {speeds['triad']:.1f} GB/s")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()
