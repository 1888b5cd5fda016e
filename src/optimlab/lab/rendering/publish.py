"""Writing results out: the one module that knows every kind of result and the page that
draws it. Results are data (results.py, sweep.py, trajectories.py) and never render
themselves; a page function takes them (pages.py, sweep_page.py).

    results = optimlab.lab.compare("digits-mlp", ["sgd", "adam"])
    print(optimlab.lab.table(results))
    folder = optimlab.lab.write_report(results, "runs")
"""

from __future__ import annotations

from pathlib import Path

from optimlab.lab.analysis.benchmark_results import BenchmarkResults
from optimlab.lab.analysis.results import Results
from optimlab.lab.analysis.tables import compare_table, sweep_table, trajectory_table
from optimlab.lab.rendering import benchmark_page, pages, sweep_page
from optimlab.lab.rendering.report import new_run_folder
from optimlab.lab.running.sweep import SweepResults
from optimlab.lab.running.trajectories import TrajectoryResults

Done = Results | SweepResults | TrajectoryResults | BenchmarkResults


def write_report(done: Done, out: str | Path = "runs", folder: Path | None = None) -> Path:
    """Write report.html, metrics.csv (trials.csv), summary.json and the figures' PNGs of
    ``done`` (a comparison, a sweep, trajectories or a benchmark) into a new folder
    ``out/<timestamp>-<task>/``, or into ``folder``; returns the folder."""
    if isinstance(done, Results):
        return pages.write_compare(done, folder or new_run_folder(out, done.task.name))
    if isinstance(done, SweepResults):
        name = f"sweep-{done.results.task.name}"
        return sweep_page.write_sweep(done, folder or new_run_folder(out, name))
    if isinstance(done, TrajectoryResults):
        return pages.write_trajectories(done, folder or new_run_folder(out, "trajectories"))
    if isinstance(done, BenchmarkResults):
        return benchmark_page.write_benchmark(done, folder or new_run_folder(out, "benchmark"))
    raise TypeError(f"write_report: done is a {type(done).__name__}; valid: what "
                    "optimlab.lab.compare, sweep, trajectories or benchmark return")


def table(done: Done) -> str:
    """The summary table(s) of ``done`` as text, as the command line prints them."""
    if isinstance(done, Results):
        return compare_table(done).to_text()
    if isinstance(done, SweepResults):
        return sweep_table(done).to_text()
    if isinstance(done, TrajectoryResults):
        return "\n\n".join(trajectory_table(r).to_text() for r in done.surfaces.values())
    if isinstance(done, BenchmarkResults):
        return "\n\n".join(table.to_text() for table in (
            benchmark_page.score_table(done), benchmark_page.task_table(done, "steps")))
    raise TypeError(f"table: done is a {type(done).__name__}; valid: what "
                    "optimlab.lab.compare, sweep, trajectories or benchmark return")
