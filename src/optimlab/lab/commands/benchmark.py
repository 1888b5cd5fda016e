"""``optimlab benchmark`` and ``optimlab.lab.benchmark``: each optimizer tuned under the same
budget on several tasks, scored by its time to each task's target (AlgoPerf's protocol).

    import optimlab.lab
    done = optimlab.lab.benchmark(["digits-mlp", "mnist1d-mlp"], ["sgd", "adam"], trials=5)
    print(optimlab.lab.table(done))
    optimlab.lab.write_report(done, "runs")

The trials live in an Optuna storage (``storage``: a journal file, by default
``<out>/benchmark.journal``, or an RDB URL shared by many machines): calling it again on
the same storage finishes what was left and reuses what was done.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from optimlab.lab.analysis.benchmark_results import BenchmarkResults
from optimlab.lab.analysis.standings import Standings
from optimlab.lab.commands.api import resolve_specs
from optimlab.lab.inputs.specs import OptimizerSpec
from optimlab.lab.running import benchmark as running
from optimlab.lab.running.benchmark import Setup
from optimlab.lab.workloads.tasks import get_task

# the tasks a default benchmark scores: real data, a few seconds a trial, and optimizers
# that differ on them (a Fashion-MNIST that is not installed is left out, and said so)
DEFAULT_TASKS = ("digits-mlp", "sparse-features", "mnist1d-mlp", "fashion-mlp")
# the seeds' optimizers (adamw is Adam plus the decay it tunes anyway: ask for it by name)
DEFAULT_BENCHMARK_OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
# two local processes: this machine's two cores; a trial is timed with the other worker
# running beside it, which weighs on every optimizer alike (trials interleave)
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)
JOURNAL = "benchmark.journal"


def resolve_tasks(tasks: Sequence[str] | str | None) -> tuple[list[str], dict[str, str]]:
    """(the tasks that can run here, {task left out: why}); ValueError when none can."""
    names = [tasks] if isinstance(tasks, str) else list(tasks or DEFAULT_TASKS)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"--tasks: given twice: {', '.join(repeated)}")
    usable, missing = [], {}
    for name in names:
        reason = get_task(name).unavailable()
        if reason:
            missing[name] = reason
        else:
            usable.append(name)
    if not usable:
        raise ValueError("--tasks: no task can run here: " + "; ".join(
            f"{name}: {why}" for name, why in missing.items()))
    return usable, missing


def make_setup(tasks: Sequence[str] | str | None = None,
               optimizers: Sequence[str | OptimizerSpec] | None = None, *, trials: int = 5,
               studies: int = 3, storage: str | Path | None = None,
               out: str | Path = "runs", tune: Sequence[str] | None = None,
               steps: int | None = None) -> tuple[Setup, dict[str, str]]:
    """The checked setup (every argument refused with its name, value and valid range
    before anything trains), and the tasks left out."""
    for name, value in (("trials", trials), ("studies", studies)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"--{name}={value!r} is invalid; valid: an integer >= 1")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"--steps={steps!r} is invalid; valid: an integer >= 1")
    names, missing = resolve_tasks(tasks)
    specs = resolve_specs(get_task(names[0]), list(optimizers or DEFAULT_BENCHMARK_OPTIMIZERS))
    if tune is not None:
        keys = {dim.key for spec in specs for dim in running.space_of(spec)}
        unknown = sorted(set(tune) - keys)
        if unknown:
            raise ValueError(f"--tune {' '.join(unknown)}: not in the optimizers' search "
                             f"spaces; valid: {', '.join(sorted(keys))}")
    for spec in specs:
        running.space_of(spec)  # refuses a class that is not in the registry
    where = str(storage) if storage else str(Path(out) / JOURNAL)
    setup = Setup(tuple(names), tuple(specs), trials, studies, where,
                  tuple(tune) if tune is not None else None, steps)
    return setup, missing


def standings_of(setup: Setup, worker: running.Worker) -> Standings:
    return Standings(running.collect(worker), list(setup.tasks),
                     [spec.label for spec in setup.specs],
                     {name: get_task(name).headline.higher_is_better for name in setup.tasks})


def benchmark(tasks: Sequence[str] | str | None = None,
              optimizers: Sequence[str | OptimizerSpec] | None = None, *, trials: int = 5,
              studies: int = 3, storage: str | Path | None = None, out: str | Path = "runs",
              workers: int = DEFAULT_WORKERS, tune: Sequence[str] | None = None,
              steps: int | None = None, progress: bool | None = None) -> BenchmarkResults:
    """Tune each optimizer on each task with ``trials`` quasirandom trials per study,
    ``studies`` times, in the Optuna storage ``storage`` (default: a journal file in
    ``out``), with ``workers`` local processes; return the results.

    ``tasks``: built-in task names (default ``DEFAULT_TASKS``; one whose data is not
    installed is left out and said so). ``optimizers``: registry names or specs (default
    sgd, momentum, rmsprop, adam); keys a spec sets are not tuned. ``tune``: only
    these keys of the search spaces (default: all). ``steps``: every task's budget
    (default: each task's own). Ctrl-C stops it; calling it again finishes the rest.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers={workers!r} is invalid; valid: an integer >= 1")
    setup, missing = make_setup(tasks, optimizers, trials=trials, studies=studies,
                                storage=storage, out=out, tune=tune, steps=steps)
    started = time.perf_counter()
    worker = running.prepare(setup)
    before = worker.complete()  # trials an earlier run (or another machine) finished
    interrupted = False
    try:
        running.run_workers(setup, workers, progress, worker=worker)
    except KeyboardInterrupt:
        interrupted = True
    return BenchmarkResults(setup, standings_of(setup, worker), missing,
                            budget=worker.budget(), complete=worker.complete(),
                            ran=worker.complete() - before,
                            seconds=time.perf_counter() - started,
                            workers=workers, interrupted=interrupted)

