"""optimlab's lab: train optimizers side by side on real tasks and draw why one wins.

    import optimlab.lab
    results = optimlab.lab.compare("digits-mlp", ["sgd", "momentum", "adam"])
    print(optimlab.lab.table(results))
    optimlab.lab.write_report(results, "runs")

Needs the lab extras: ``pip install 'optimlab[lab]'`` (matplotlib, scikit-learn, tqdm).
Names are imported on first use, so that ``optimlab tasks`` starts fast and a missing
extra is reported by the command line, not as a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

EXPORTS = {
    "compare": "optimlab.lab.api", "Results": "optimlab.lab.results",
    "Summary": "optimlab.lab.results", "Settings": "optimlab.lab.runner",
    "OptimizerSpec": "optimlab.lab.specs", "SpecError": "optimlab.lab.specs",
    "parse_spec": "optimlab.lab.specs", "TASKS": "optimlab.lab.tasks",
    "Metric": "optimlab.lab.tasks", "Task": "optimlab.lab.tasks",
    "Training": "optimlab.lab.tasks", "custom_task": "optimlab.lab.tasks",
    "get_task": "optimlab.lab.tasks", "write_report": "optimlab.lab.publish",
    "table": "optimlab.lab.publish",
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in EXPORTS:
        raise AttributeError(f"module 'optimlab.lab' has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)
