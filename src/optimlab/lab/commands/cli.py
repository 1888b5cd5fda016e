"""The ``optimlab`` command: compare, sweep, trajectories, benchmark, tasks, optimizers.

    optimlab compare                                  # digits-mlp, 5 optimizers x 3 seeds
    optimlab compare --task digits-cnn --optimizers sgd "adam:lr=3e-4,bias_correction=false"
    optimlab sweep --task digits-mlp --optimizers sgd adam
    optimlab sweep --optimizers adam adamw --weight-decays 0 1e-4 1e-3 1e-2 1e-1
    optimlab trajectories --gif
    optimlab benchmark                                # 4 optimizers tuned alike on 4 tasks
    optimlab benchmark --storage postgresql://user@host/db --workers 4   # on many machines
    optimlab tasks
    optimlab optimizers
    optimlab bench                                    # step speed against torch.optim

This module imports only the standard library at first, so that a missing lab extra is
reported as one clear line instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

EXTRAS = {"matplotlib": "matplotlib", "sklearn": "scikit-learn", "tqdm": "tqdm",
          "optuna": "optuna", "mnist1d": "mnist1d"}


def missing_extras() -> list[str]:
    """The lab's optional dependencies that are not installed."""
    return [package for module, package in EXTRAS.items()
            if importlib.util.find_spec(module) is None]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is invalid; valid: an integer >= 1")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is invalid; valid: a number > 0")
    return value


def warmup_value(text: str) -> int | float:
    """'100' is a number of steps, '0.1' a fraction of them (as optimlab.schedules reads)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is invalid; valid: a number >= 0")
    return value


def clip_value(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is invalid; valid: a norm > 0, or 0 for "
                                         "no clipping")
    return value


def add_training_options(parser: argparse.ArgumentParser, seeds: int) -> None:
    """Options shared by compare and sweep."""
    parser.add_argument("--task", default="digits-mlp",
                        help="a task from `optimlab tasks` (default: digits-mlp)")
    parser.add_argument("--optimizers", nargs="+", metavar="SPEC",
                        help="optimizer specs, e.g. sgd momentum adam:lr=3e-4,"
                             "bias_correction=false (default: the task's list; see "
                             "`optimlab optimizers`)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, help="training steps per run")
    length.add_argument("--epochs", type=positive_float,
                        help="passes over the training data per run (instead of --steps)")
    parser.add_argument("--seeds", type=positive_int, default=seeds,
                        help=f"number of seeds per optimizer, 0..N-1 (default: {seeds})")
    parser.add_argument("--batch-size", type=positive_int, help="examples per step")
    parser.add_argument("--out", default="runs", type=Path,
                        help="folder in which the run folder <timestamp>-<task> is made "
                             "(default: runs)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it shows only on a terminal anyway)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optimlab", description="Compare optimizers on real tasks and draw why one "
        "wins. Each command writes a run folder with a self-contained report.html.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    compare = commands.add_parser("compare", help="train optimizers side by side; report")
    add_training_options(compare, seeds=3)
    compare.add_argument("--schedule", help="lr schedule after the warmup: constant, linear, "
                         "cosine or wsd (optimlab.schedules; default: the task's)")
    compare.add_argument("--warmup", type=warmup_value,
                         help="warmup: a fraction of the steps (0.1) or a number of steps "
                              "(100) (default: the task's)")
    compare.add_argument("--clip", type=clip_value,
                         help="clip the gradient norm at this value; 0: no clipping "
                              "(default: the task's)")
    sweep = commands.add_parser("sweep", help="final metric vs learning rate, per optimizer")
    add_training_options(sweep, seeds=1)
    sweep.add_argument("--lrs", nargs="+", type=positive_float, metavar="LR",
                       help="the learning rates (default: a log grid over the task's range)")
    sweep.add_argument("--lr-range", nargs=2, type=positive_float, metavar=("LOW", "HIGH"),
                       help="the grid's ends (default: the task's)")
    sweep.add_argument("--per-decade", type=positive_int, default=2,
                       help="grid points per decade (default: 2, i.e. 1, 3, 10, ...)")
    sweep.add_argument("--weight-decays", nargs="+", type=non_negative_float, metavar="λ",
                       help="also sweep the weight decay over these values: an lr × λ "
                            "heatmap per optimizer (e.g. adam adamw: L2 vs decoupled)")
    paths = commands.add_parser("trajectories", help="optimizer paths over 2-D surfaces")
    paths.add_argument("--optimizers", nargs="+", metavar="SPEC",
                       help="optimizer specs (default: the surfaces' list in `optimlab "
                            "tasks`: sgd momentum adagrad rmsprop adam)")
    paths.add_argument("--surfaces", nargs="+", choices=["ravine", "rosenbrock"],
                       default=["ravine", "rosenbrock"], help="which surfaces")
    paths.add_argument("--steps", type=positive_int, help="steps (default: each surface's)")
    paths.add_argument("--gif", action="store_true", help="also an animated GIF per surface")
    paths.add_argument("--out", default="runs", type=Path, help="parent of the run folder")
    paths.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_benchmark(commands)
    commands.add_parser("tasks", help="the tasks, one line each (and how each target was set)")
    optimizers = commands.add_parser("optimizers",
                                     help="optimizer names, options and default lrs")
    optimizers.add_argument("--task", help="show the default lrs of this task only")
    bench = commands.add_parser("bench", help="optimizer-step speed against torch.optim, "
                                "with the memory-bandwidth floor")
    bench.add_argument("--shapes", nargs="+", default=["gpt-small"],
                       choices=["gpt-small", "char-transformer", "100m-8", "1m-2000",
                                "all"],
                       help="parameter sets (default: gpt-small, 25.2M params in 150 "
                            "tensors)")
    bench.add_argument("--variants", nargs="+", metavar="TEXT",
                       help="only the variants whose label contains one of these words "
                            "(torch fused AdamW is always kept, as the baseline)")
    bench.add_argument("--all", action="store_true", help="every variant, not the main ones")
    bench.add_argument("--rounds", type=positive_int, default=5,
                       help="interleaved timing rounds (default: 5)")
    bench.add_argument("--steps", type=positive_int, default=4,
                       help="steps per variant per round (default: 4)")
    bench.add_argument("--out", type=Path, help="also write the report (markdown) here")
    return parser


def add_benchmark(commands: argparse._SubParsersAction) -> None:
    """``optimlab benchmark``'s options."""
    bench = commands.add_parser(
        "benchmark", help="each optimizer tuned alike on several tasks; time to target, "
        "performance profiles, scores (trials in an Optuna storage, resumable, shareable)")
    bench.add_argument("--tasks", nargs="+", metavar="TASK",
                       help="tasks from `optimlab tasks` (default: digits-mlp "
                            "sparse-features mnist1d-mlp fashion-mlp)")
    bench.add_argument("--optimizers", nargs="+", metavar="SPEC",
                       help="registry names or specs; keys a spec sets are not tuned "
                            "(default: sgd momentum rmsprop adam)")
    bench.add_argument("--trials", type=positive_int, default=5,
                       help="tuned trials per optimizer, task and study (default: 5)")
    bench.add_argument("--studies", type=positive_int, default=3,
                       help="independent studies; the median over them counts (default: 3)")
    bench.add_argument("--storage", help="an Optuna storage: a journal file path, or an RDB "
                       "URL (sqlite:///b.db, postgresql://user@host/db) that workers on many "
                       "machines share (default: OUT/benchmark.journal)")
    bench.add_argument("--out", default="runs", type=Path,
                       help="folder of the default storage and of the report folder "
                            "<timestamp>-benchmark (default: runs)")
    bench.add_argument("--workers", type=positive_int,
                       default=min(2, os.cpu_count() or 1),
                       help="local worker processes (default: 2, or 1 on one core)")
    bench.add_argument("--tune", nargs="+", metavar="KEY",
                       help="tune only these keys of the search spaces, e.g. lr (default: "
                            "all: lr, weight_decay, momentum or betas[0], warmup)")
    bench.add_argument("--steps", type=positive_int,
                       help="every task's step budget (default: each task's own)")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_bench(arguments: argparse.Namespace) -> int:
    """``optimlab bench``: needs torch only, not the lab's extras."""
    from optimlab.lab import bench

    shapes = list(bench.SHAPES) if "all" in arguments.shapes else arguments.shapes
    report = bench.run(shapes, arguments.variants, arguments.all, arguments.rounds,
                       arguments.steps, progress=lambda line: print(line, file=sys.stderr))
    print(report)
    if arguments.out:
        arguments.out.write_text(report + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``optimlab`` console script; returns the exit status."""
    arguments = build_parser().parse_args(argv)
    if arguments.command == "bench":
        return run_bench(arguments)
    missing = missing_extras()
    if missing:
        print(f"optimlab: the lab needs its extras, missing: {', '.join(missing)}. "
              "Install them with: pip install 'optimlab[lab]'", file=sys.stderr)
        return 1
    from optimlab.lab.commands import commands

    return commands.run(arguments)


if __name__ == "__main__":
    sys.exit(main())
