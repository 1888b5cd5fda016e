"""``optimlab trajectories``: optimizers' paths over 2-D surfaces (surfaces.py).

Each optimizer starts at the surface's start point (no jitter: one path per optimizer)
and its position is recorded after every step, as the records ``x`` and ``y``. The
pictures: the paths over the contour plot, f(x, y) vs step, and the length of each step
— where SGD zig-zags across the ravine, momentum and Adam run along it, AdaGrad's steps
shrink as its sum of squares grows, and Adam without bias correction starts with steps
about 3x larger, not smaller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from optimlab.lab.analysis.results import Results
from optimlab.lab.inputs.specs import OptimizerSpec
from optimlab.lab.running.records import Run
from optimlab.lab.running.runner import Settings, run_all
from optimlab.lab.workloads.problems import Problem
from optimlab.lab.workloads.surfaces import SURFACES, SurfaceProblem
from optimlab.lab.workloads.tasks import Task, get_task


def exact_start(task: Task) -> Task:
    """The surface task with every run starting exactly at the start point."""
    surface = SURFACES[task.name]

    def make(seed: int, batch_size: int) -> Problem:
        return SurfaceProblem(surface, seed, jitter=0.0)

    return replace(task, make=make)


def path(run: Run) -> tuple[list[float], list[float]]:
    """The run's positions, start included, up to its last finite one."""
    xs, ys = run.series("x")[2], run.series("y")[2]
    length = min(len(xs), len(ys))
    return xs[:length], ys[:length]


def step_lengths(run: Run) -> tuple[list[int], list[float]]:
    """(step, ‖θ_step − θ_step−1‖) for each step of the run."""
    xs, ys = path(run)
    steps = list(range(1, len(xs)))
    return steps, [math.hypot(xs[i] - xs[i - 1], ys[i] - ys[i - 1]) for i in steps]


@dataclass
class TrajectoryResults:
    """One Results per surface."""

    surfaces: dict[str, Results]
    gif: bool = False

    @property
    def interrupted(self) -> bool:
        return any(results.interrupted for results in self.surfaces.values())


def trajectories(specs: Sequence[OptimizerSpec], surfaces: Sequence[str] = tuple(SURFACES),
                 steps: int | None = None, progress: bool | None = None,
                 gif: bool = False) -> TrajectoryResults:
    """Run each spec from each surface's start point, recording every position."""
    done: dict[str, Results] = {}
    for name in surfaces:
        task = exact_start(get_task(name))
        settings = Settings(steps=steps or task.steps, batch_size=1, seeds=(0,),
                            eval_points=None)
        done[name] = run_all(task, specs, settings, progress=progress)
        if done[name].interrupted:
            break
    return TrajectoryResults(done, gif)
