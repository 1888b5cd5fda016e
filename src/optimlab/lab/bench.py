"""``optimlab bench``: optimizer-step speed against torch.optim, in one process.

An optimizer step is a memory-bound pass, so every time is set beside the floor: the bytes
the step must move (``Variant.bytes_per_param``) at the bandwidth of an in-place triad
``a += s·c`` measured here and now (a copy reads its destination too, so it is reported
but is no floor). Variants are timed in interleaved rounds, so that the drift of a shared
machine falls on all of them alike; the table reports medians and ratios to torch's fused
AdamW. Parameters and gradients are shared by all the variants of a shape (random, fixed);
each variant keeps its own state.

    optimlab bench                          # the GPT-small-like shape, the main variants
    optimlab bench --shapes all --variants all
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

import optimlab

MB = 1 << 20


def gpt_small_like() -> list[tuple[int, ...]]:
    """25.2M params in 150 tensors: a 5000x768 embedding, 3 blocks of four 768x768
    projections and a 768x3072 / 3072x768 MLP, and 131 vectors of 768."""
    block = [(768, 768)] * 4 + [(768, 3072), (3072, 768)]
    return [(5000, 768), *block * 3, *[(768,)] * 131]


SHAPES: dict[str, Callable[[], list[tuple[int, ...]]]] = {
    "gpt-small": gpt_small_like,
    "100m-8": lambda: [(3125, 4000)] * 8,
    "1m-2000": lambda: [(20, 25)] * 2000,
}


@dataclass(frozen=True)
class Variant:
    """One way to take a step: a label, how to build it, the bytes it must move."""

    label: str
    build: Callable[[list[torch.Tensor]], torch.optim.Optimizer]
    bytes_per_param: int
    algorithm: str
    main: bool = True  # in the default set


def _torch(name: str, **kw) -> Callable:
    return lambda params: getattr(torch.optim, name)(params, **kw)


def _ours(name: str, **kw) -> Callable:
    return lambda params: getattr(optimlab, name)(params, **kw)


ADAM, SGD = dict(lr=1e-3), dict(lr=1e-3, momentum=0.9)
VARIANTS = [
    Variant("torch AdamW for-loop", _torch("AdamW", foreach=False), 28, "adamw"),
    Variant("torch AdamW foreach", _torch("AdamW", foreach=True), 28, "adamw", main=False),
    Variant("torch AdamW fused", _torch("AdamW", fused=True), 28, "adamw"),
    Variant("optimlab AdamW auto (native)", _ours("AdamW"), 28, "adamw"),
    Variant("optimlab AdamW compiled", _ours("AdamW", engine="compiled"), 28, "adamw"),
    Variant("optimlab AdamW reference", _ours("AdamW", engine="reference"), 28, "adamw",
            main=False),
    Variant("torch Adam fused", _torch("Adam", fused=True), 28, "adam", main=False),
    Variant("optimlab Adam auto (native)", _ours("Adam"), 28, "adam", main=False),
    Variant("optimlab Adam compiled", _ours("Adam", engine="compiled"), 28, "adam",
            main=False),
    Variant("optimlab Adam reference", _ours("Adam", engine="reference"), 28, "adam",
            main=False),
    Variant("torch SGD-momentum for-loop", _torch("SGD", foreach=False, **SGD), 20, "sgd",
            main=False),
    Variant("torch SGD-momentum fused", _torch("SGD", fused=True, **SGD), 20, "sgd"),
    Variant("optimlab SGD-momentum auto (native)", _ours("SGD", **SGD), 20, "sgd"),
    Variant("optimlab SGD-momentum compiled", _ours("SGD", engine="compiled", **SGD), 20,
            "sgd", main=False),
    Variant("optimlab SGD-momentum reference", _ours("SGD", engine="reference", **SGD), 20,
            "sgd", main=False),
    Variant("torch Adagrad fused", _torch("Adagrad", fused=True), 20, "adagrad"),
    Variant("optimlab Adagrad auto (native)", _ours("Adagrad"), 20, "adagrad"),
    Variant("optimlab Adagrad compiled", _ours("Adagrad", engine="compiled"), 20, "adagrad",
            main=False),
    Variant("optimlab Adagrad reference", _ours("Adagrad", engine="reference"), 20,
            "adagrad", main=False),
    Variant("torch RMSprop for-loop", _torch("RMSprop", foreach=False), 20, "rmsprop"),
    Variant("torch RMSprop foreach", _torch("RMSprop", foreach=True), 20, "rmsprop",
            main=False),
    Variant("optimlab RMSprop auto (compiled)", _ours("RMSprop"), 20, "rmsprop"),
    Variant("optimlab RMSprop reference", _ours("RMSprop", engine="reference"), 20,
            "rmsprop", main=False),
    Variant("optimlab RMSprop centered+momentum", _ours("RMSprop", centered=True,
                                                        momentum=0.9), 36, "rmsprop"),
    Variant("optimlab RMSprop preset=keras", _ours("RMSprop", preset="keras", momentum=0.9),
            28, "rmsprop", main=False),
    Variant("optimlab Adam eps inside the root", _ours("Adam", eps_placement="inside"), 28,
            "adam"),
    Variant("optimlab AdamW lr-independent decay",
            _ours("AdamW", weight_decay=1e-4, weight_decay_form="independent"), 28, "adamw",
            main=False),
    Variant("optimlab SGD EMA momentum", _ours("SGD", momentum_form="ema", **SGD), 20, "sgd"),
    Variant("optimlab Adagrad eps inside the root", _ours("Adagrad", eps_placement="inside"),
            20, "adagrad", main=False),
    Variant("optimlab AdamW bf16 moments", _ours("AdamW", state_dtype=torch.bfloat16), 20,
            "adamw"),
    Variant("optimlab AdamW 8-bit moments", _ours("AdamW", state_dtype=torch.int8), 16,
            "adamw"),
]
BASELINE = "torch AdamW fused"


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


def _state_bytes(optimizer: torch.optim.Optimizer) -> int:
    seen, total = set(), 0
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                storage = value.untyped_storage()
                if storage.data_ptr() not in seen:
                    seen.add(storage.data_ptr())
                    total += storage.nbytes()
    return total


def measure(shapes: list[tuple[int, ...]], variants: list[Variant], rounds: int = 5,
            steps: int = 4, progress: Callable[[str], None] = print) -> tuple[
                list[Measured], float]:
    """Time ``variants`` on params of ``shapes``: first step (compile included), then
    ``rounds`` interleaved rounds of ``steps`` steps each. Returns the measurements and the
    median in-place triad bandwidth (GB/s), measured once per round between them: on a
    shared machine the bandwidth drifts, and a floor measured apart would not be theirs."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator) * 0.02) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator) * 1e-3
    built = []
    for variant in variants:
        optimizer = variant.build(params)
        start = time.perf_counter()
        optimizer.step()
        measured = Measured(variant, time.perf_counter() - start, [],
                            _state_bytes(optimizer))
        progress(f"{variant.label}: first step {measured.first_step_s:.2f} s")
        built.append((optimizer, measured))
    triads = []
    for _ in range(rounds):
        for optimizer, measured in built:
            for _ in range(steps):
                start = time.perf_counter()
                optimizer.step()
                measured.times.append(time.perf_counter() - start)
        triads.append(bandwidth(repeats=2)["triad"])
    results = [measured for _, measured in built]
    del built, params
    gc.collect()
    return results, statistics.median(triads)


def table(shape_name: str, shapes: list[tuple[int, ...]], results: list[Measured],
          triad_gbs: float) -> str:
    """The results as a markdown table: ms/step, ratio to torch fused AdamW, the floor,
    the fraction of it reached, first-step time and state bytes per parameter."""
    numel = sum(torch.Size(s).numel() for s in shapes)
    base = next((m.ms for m in results if m.variant.label == BASELINE), None)
    lines = [f"{shape_name}: {numel / 1e6:.1f}M params in {len(shapes)} tensors; floor at "
             f"{triad_gbs:.1f} GB/s (in-place triad, median of one per round)", "",
             "| step | ms/step | vs torch fused AdamW | floor ms | % of floor | "
             "first step s | state B/param |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for m in results:
        floor = m.variant.bytes_per_param * numel / (triad_gbs * 1e9) * 1e3
        ratio = f"{m.ms / base:.2f}" if base else "—"
        lines.append(f"| {m.variant.label} | {m.ms:.1f} | {ratio} | {floor:.1f} | "
                     f"{100 * floor / m.ms:.0f}% | {m.first_step_s:.2f} | "
                     f"{m.state_bytes / numel:.2f} |")
    return "\n".join(lines)


def chosen_variants(names: list[str] | None, everything: bool) -> list[Variant]:
    """The default set, all variants, or those whose label contains one of ``names``."""
    if names:
        picked = [v for v in VARIANTS if any(n.lower() in v.label.lower() for n in names)]
        baseline = [v for v in VARIANTS if v.label == BASELINE and v not in picked]
        return baseline + picked
    return list(VARIANTS) if everything else [v for v in VARIANTS if v.main]


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
            f"too: not a floor), in-place triad {speeds['triad']:.1f} GB/s")


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


FIRST_STEP_SCRIPT = """
import time, torch, optimlab
from optimlab.lab.bench import gpt_small_like
params = [torch.nn.Parameter(torch.randn(s) * 0.02) for s in gpt_small_like()]
for p in params:
    p.grad = torch.randn(p.shape) * 1e-3
optimizer = optimlab.{name}(params, engine="compiled", {kwargs})
start = time.perf_counter()
optimizer.step()
print(time.perf_counter() - start)
"""


def first_step_seconds(name: str = "RMSprop", kwargs: str = "") -> dict[str, float]:
    """Seconds of a compiled optimizer's first step on the GPT-small-like shape, compile
    included: with an empty Inductor cache ("cold", a fresh process and cache folder) and
    again in a second fresh process that finds the first one's cache ("warm")."""
    import os
    import subprocess
    import sys
    import tempfile

    script = FIRST_STEP_SCRIPT.format(name=name, kwargs=kwargs)
    times = {}
    with tempfile.TemporaryDirectory() as cache:
        environment = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        for label in ("cold", "warm"):
            done = subprocess.run([sys.executable, "-c", script], env=environment,
                                  capture_output=True, text=True, check=True)
            times[label] = float(done.stdout.strip().splitlines()[-1])
    return times
