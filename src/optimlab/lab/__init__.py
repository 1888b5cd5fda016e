"""optimlab's lab: train optimizers side by side on real tasks and draw why one wins.

    import optimlab.lab
    results = optimlab.lab.compare("digits-mlp", ["sgd", "momentum", "adam"])
    print(optimlab.lab.table(results))
    optimlab.lab.write_report(results, "runs")

    done = optimlab.lab.benchmark(["digits-mlp", "mnist1d-mlp"], ["sgd", "adam"])
    print(optimlab.lab.table(done))      # scores: each optimizer tuned alike

Needs the lab extras: ``pip install 'optimlab[lab]'`` (matplotlib, scikit-learn, tqdm,
optuna, mnist1d).
Names are imported on first use, so that ``optimlab tasks`` starts fast and a missing
extra is reported by the command line, not as a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

EXPORTS = {
    "compare": "optimlab.lab.commands.api", "Results": "optimlab.lab.analysis.results",
    "Summary": "optimlab.lab.analysis.results", "Settings": "optimlab.lab.running.runner",
    "OptimizerSpec": "optimlab.lab.inputs.specs", "SpecError": "optimlab.lab.inputs.specs",
    "parse_spec": "optimlab.lab.inputs.specs", "TASKS": "optimlab.lab.workloads.tasks",
    "Metric": "optimlab.lab.workloads.tasks", "Task": "optimlab.lab.workloads.tasks",
    "Training": "optimlab.lab.workloads.tasks", "custom_task": "optimlab.lab.workloads.tasks",
    "get_task": "optimlab.lab.workloads.tasks", "write_report": "optimlab.lab.rendering.publish",
    "table": "optimlab.lab.rendering.publish",
    "benchmark": "optimlab.lab.commands.benchmark",
    "BenchmarkResults": "optimlab.lab.analysis.benchmark_results",
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in EXPORTS:
        raise AttributeError(f"module 'optimlab.lab' has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)
