"""What each ``optimlab`` command does with its parsed arguments (cli.py parses them).

Every command checks all of its input — task, optimizer specs, settings, the output
folder — before it trains anything, and reports a problem as one line naming it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optimlab.lab.analysis.tables import (
    Table,
    compare_table,
    number,
    plural,
    studies_text,
    sweep_table,
    trajectory_table,
)
from optimlab.lab.commands.api import resolve_settings, resolve_specs
from optimlab.lab.inputs.specs import NAMED, TORCH_FLAGS, TRAINING_KEYS, describe_key, valid_keys
from optimlab.lab.rendering.benchmark_page import score_table, task_table
from optimlab.lab.rendering.publish import write_report
from optimlab.lab.rendering.report import new_run_folder
from optimlab.lab.running.runner import check_specs, run_all
from optimlab.lab.running.sweep import lr_grid, sweep, sweep_specs
from optimlab.lab.running.trajectories import trajectories
from optimlab.lab.workloads.tasks import GENERIC_LRS, TASKS, get_task

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class UsageError(Exception):
    """Bad input found before training: reported as one line, exit status 2."""


def checked(prepare: Callable[[], Any]) -> Any:
    """Run the input checks; turn what they refuse into a UsageError."""
    try:
        return prepare()
    except (ValueError, OSError) as error:
        raise UsageError(str(error)) from None


def progress(arguments: argparse.Namespace) -> bool | None:
    return False if arguments.no_progress else None


def finish(folder: Path, tables: list[Table], interrupted: bool) -> int:
    """Print the tables and where the report is; the exit status."""
    for table in tables:
        print(f"{table.title}:\n" if table.title else "", table.to_text(), sep="", end="\n\n")
    if interrupted:
        print("interrupted: the report shows the runs that finished", file=sys.stderr)
    print(f"report: {folder / 'report.html'}")
    return EXIT_INTERRUPTED if interrupted else 0


def compare_command(arguments: argparse.Namespace) -> int:
    def prepare():
        task = get_task(arguments.task)
        specs = resolve_specs(task, arguments.optimizers)
        settings = resolve_settings(task, steps=arguments.steps, epochs=arguments.epochs,
                                    seeds=arguments.seeds, batch_size=arguments.batch_size,
                                    schedule=arguments.schedule, warmup=arguments.warmup,
                                    clip=arguments.clip)
        check_specs(specs, settings)
        return task, specs, settings, new_run_folder(arguments.out, task.name)

    task, specs, settings, folder = checked(prepare)
    print(f"optimlab compare: {task.name}, {plural(len(specs), 'optimizer')} × "
          f"{plural(len(settings.seeds), 'seed')} × {settings.steps} steps")
    results = run_all(task, specs, settings, progress=progress(arguments))
    write_report(results, folder=folder)
    return finish(folder, [compare_table(results)], results.interrupted)


def sweep_command(arguments: argparse.Namespace) -> int:
    def prepare():
        task = get_task(arguments.task)
        specs = resolve_specs(task, arguments.optimizers)
        settings = resolve_settings(task, steps=arguments.steps, epochs=arguments.epochs,
                                    seeds=arguments.seeds, batch_size=arguments.batch_size)
        low, high = arguments.lr_range or task.lr_range
        lrs = sorted(set(arguments.lrs)) if arguments.lrs else lr_grid(
            low, high, arguments.per_decade)
        # refuses a spec that sets lr (or λ) itself
        check_specs(sweep_specs(specs, lrs, arguments.weight_decays), settings)
        return task, specs, settings, lrs, new_run_folder(arguments.out, f"sweep-{task.name}")

    task, specs, settings, lrs, folder = checked(prepare)
    decays = arguments.weight_decays
    grid = f"{plural(len(set(decays)), 'weight decay')} × " if decays else ""
    print(f"optimlab sweep: {task.name}, {plural(len(specs), 'optimizer')} × {grid}"
          f"{plural(len(lrs), 'lr')} × {plural(len(settings.seeds), 'seed')} × "
          f"{settings.steps} steps")
    done = sweep(task, specs, lrs, settings, progress=progress(arguments),
                 weight_decays=decays)
    write_report(done, folder=folder)
    return finish(folder, [sweep_table(done)], done.results.interrupted)


def trajectories_command(arguments: argparse.Namespace) -> int:
    def prepare():
        specs = resolve_specs(get_task(arguments.surfaces[0]), arguments.optimizers)
        return specs, new_run_folder(arguments.out, "trajectories")

    specs, folder = checked(prepare)
    print(f"optimlab trajectories: {', '.join(arguments.surfaces)}, "
          f"{plural(len(specs), 'optimizer')}")
    done = trajectories(specs, arguments.surfaces, arguments.steps,
                        progress=progress(arguments), gif=arguments.gif)
    write_report(done, folder=folder)
    return finish(folder, [trajectory_table(r) for r in done.surfaces.values()],
                  done.interrupted)


def benchmark_command(arguments: argparse.Namespace) -> int:
    from optimlab.lab.commands import benchmark

    def prepare():
        setup, missing = benchmark.make_setup(
            arguments.tasks, arguments.optimizers, trials=arguments.trials,
            studies=arguments.studies, storage=arguments.storage, out=arguments.out,
            tune=arguments.tune, steps=arguments.steps)
        return setup, missing, new_run_folder(arguments.out, "benchmark")

    setup, missing, folder = checked(prepare)
    for name, why in missing.items():
        print(f"optimlab benchmark: left out {name}: {why}", file=sys.stderr)
    print(f"optimlab benchmark: {', '.join(setup.tasks)}; {plural(len(setup.specs), 'optimizer')}"
          f" × {studies_text(setup.studies)} × {plural(setup.trials, 'trial')} "
          f"(+ one-shot); storage {setup.storage}; {plural(arguments.workers, 'worker')}")
    done = checked(lambda: benchmark.benchmark(
        list(setup.tasks), list(setup.specs), trials=setup.trials, studies=setup.studies,
        storage=setup.storage, workers=arguments.workers, tune=setup.tune,
        steps=setup.steps, progress=progress(arguments)))
    done.unavailable.update(missing)
    write_report(done, folder=folder)
    print(f"{done.complete} of {done.budget} trials done ({done.ran} in this run, "
          f"{done.seconds:.0f} s)")
    return finish(folder, [score_table(done), task_table(done, "steps")], done.interrupted)


def tasks_command(arguments: argparse.Namespace) -> int:
    table = Table("Tasks", ["task", "metric (target)", "steps", "batch", "optimizers",
                            "description"])
    for task in TASKS.values():
        metric = task.headline
        missing = task.unavailable()
        table.add([task.name, f"{metric.label} ({number(metric.target)})", str(task.steps),
                   str(task.batch_size), " ".join(task.optimizers),
                   task.description + (" [unavailable]" if missing else "")])
    print(table.to_text())
    print("\nHow each target was set (AlgoPerf's rule: reachable by a well-tuned baseline "
          "within the step budget):")
    for task in TASKS.values():
        print(f"  {task.name}: {task.target_note}")
    for task in TASKS.values():
        if task.unavailable():
            print(f"\nunavailable: {task.name}: {task.unavailable()}")
    return 0


def optimizers_command(arguments: argparse.Namespace) -> int:
    tasks = [get_task(arguments.task)] if arguments.task else list(TASKS.values())
    table = Table("Names", ["name", "class", *(f"lr: {task.name}" for task in tasks),
                            "lr: your task", "description"])
    for name, named in NAMED.items():
        lrs = [number(task.default_lr(name)) if task.default_lr(name) else "class default"
               for task in tasks]
        table.add([name, named.cls.__name__, *lrs, number(GENERIC_LRS[name]),
                   named.description])
    print(table.to_text())
    print("\nDefault lrs: a spec's lr=... wins; else the task's lr for the name; "
          "optimlab.lab.compare(..., model=...) tasks use the 'your task' column.")
    print("A spec is a name with options: name:key=value,key=value (pairs as a/b).")
    print("\nHow a spec trains (the lab's options, any optimizer; unset: the comparison's):")
    for text in TRAINING_KEYS.values():
        print(f"    {text}")
    print("\nOptions of each class (from its signature and hyperparameter specs):")
    for cls in dict.fromkeys(named.cls for named in NAMED.values()):
        print(f"\n  {cls.__name__}:")
        for key in valid_keys(cls):
            if key not in TORCH_FLAGS:
                print(f"    {describe_key(cls, key)}")
    print(f"\nAccepted for torch compatibility, never changing the math: "
          f"{', '.join(TORCH_FLAGS)} (differentiable=true is refused).")
    return 0


COMMANDS = {"compare": compare_command, "sweep": sweep_command,
            "benchmark": benchmark_command,
            "trajectories": trajectories_command, "tasks": tasks_command,
            "optimizers": optimizers_command}


def run(arguments: argparse.Namespace) -> int:
    """Run the parsed command; bad input becomes one line on stderr and status 2 (the
    runner sets torch's threads for training: ``run_all(threads=1)``)."""
    try:
        return COMMANDS[arguments.command](arguments)
    except UsageError as error:
        print(f"optimlab {arguments.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
