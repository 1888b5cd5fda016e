"""The lab from Python: ``optimlab.lab.compare`` — the same job as ``optimlab compare``.

    import optimlab.lab
    results = optimlab.lab.compare("digits-mlp", ["sgd", "adam:lr=3e-3"], steps=300)
    print(results.summary())
    optimlab.lab.write_report(results, "runs")   # runs/<timestamp>-digits-mlp/report.html

or with your own model and data:

    results = optimlab.lab.compare("my-mlp", ["momentum", "adamw"], model=make_model,
                                   data=(x_train, y_train), heldout=(x_test, y_test))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from torch import nn

from optimlab.lab.analysis.results import Results
from optimlab.lab.inputs.specs import OptimizerSpec, SpecError, as_spec
from optimlab.lab.running.runner import Settings, run_all
from optimlab.lab.workloads.problems import LossFn, MetricFn, accuracy
from optimlab.lab.workloads.tasks import Data, Task, custom_task, get_task


def resolve_task(task: str | Task, model: Callable[[], nn.Module] | None = None,
                 data: Data | None = None, heldout: Data | None = None,
                 loss: LossFn | None = None, metric: MetricFn | None = accuracy,
                 metric_name: str | None = None) -> Task:
    """A built-in task by name, a Task as is, or (with ``model``) a task of your own."""
    if isinstance(task, Task):
        return task
    if model is None:
        return get_task(task)
    if data is None:
        raise ValueError("model is given but data is not; pass data=(inputs, targets) or a "
                         "DataLoader")
    return custom_task(task, model, data, heldout=heldout,
                       loss=loss or nn.functional.cross_entropy, metric=metric,
                       metric_name=metric_name)


def resolve_specs(task: Task, optimizers: Sequence[str | OptimizerSpec | type] | None
                  ) -> list[OptimizerSpec]:
    """Parsed specs (the task's default list if none), refusing duplicates."""
    if isinstance(optimizers, (str, OptimizerSpec, type)):
        optimizers = [optimizers]
    specs = [as_spec(item) for item in (optimizers or task.optimizers)]
    labels = [spec.label for spec in specs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise SpecError(f"optimizer spec(s) given twice: {', '.join(repeated)}")
    return specs


def resolve_settings(task: Task, *, steps: int | None = None, epochs: float | None = None,
                     seeds: int | Sequence[int] = 3, batch_size: int | None = None,
                     schedule: str | None = None, warmup: float | None = None,
                     clip: float | None = None, **extra: object) -> Settings:
    """Settings from the task's defaults, overridden by what is given."""
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    if epochs is not None and not epochs > 0:
        raise ValueError(f"epochs={epochs!r} is invalid; valid: a number > 0")
    if isinstance(seeds, int) and seeds < 1:
        raise ValueError(f"seeds={seeds} is invalid; valid: a number of seeds >= 1 (seeds "
                         "0..N-1) or a list of seeds")
    size = task.batch_size if batch_size is None else batch_size
    if epochs is not None:
        steps = task.steps_for_epochs(epochs, size)
    seed_list = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    training = task.training
    for name, value in (("schedule", schedule), ("warmup", warmup), ("clip", clip)):
        if value is not None:
            training = replace(training, **{name: value})
    if clip == 0:  # an explicit 0: no clipping, whatever the task's default
        training = replace(training, clip=None)
    return Settings(steps=task.steps if steps is None else steps, batch_size=size,
                    seeds=seed_list, training=training, **extra)


def compare(task: str | Task = "digits-mlp",
            optimizers: Sequence[str | OptimizerSpec | type] | None = None, *,
            model: Callable[[], nn.Module] | None = None, data: Data | None = None,
            heldout: Data | None = None, loss: LossFn | None = None,
            metric: MetricFn | None = accuracy, metric_name: str | None = None,
            steps: int | None = None, epochs: float | None = None,
            seeds: int | Sequence[int] = 3, batch_size: int | None = None,
            schedule: str | None = None, warmup: float | None = None,
            clip: float | None = None, progress: bool | None = None,
            threads: int | None = 1) -> Results:
    """Train each optimizer spec with each seed on a task; return the Results.

    ``task``: a built-in task's name (``optimlab tasks``), a ``Task``, or, with ``model``,
    the name of your own task: ``model`` is a function that builds a fresh model (a class,
    or ``lambda: MyNet()``; called after ``torch.manual_seed(seed)`` for each run), ``data``
    and ``heldout`` are ``(inputs, targets)`` tensors or DataLoaders, ``loss(outputs,
    targets)`` a tensor (default cross-entropy), ``metric(outputs, targets)`` a float,
    higher is better (default accuracy; None: the held-out loss), shown as
    ``metric_name`` (default: the function's name). ``optimizers``: spec texts
    (``"adam:lr=3e-4"``, ``optimlab optimizers``), ``OptimizerSpec``s or optimizer classes
    (``torch.optim.Adam``). ``seeds``: how many (0, 1, ...) or which. ``schedule``
    (``optimlab.schedules``: constant, linear, cosine, wsd), ``warmup`` (fraction of the
    steps, or steps) and ``clip`` (max gradient norm; 0: none) go to ``optimlab.recipe``
    and ``optimlab.clip_grad_norm``. Unset options take the task's defaults. ``progress``:
    the bar (None: on a terminal); ``threads``: torch's threads while training (1, as the
    CLI: fastest for small models; None: as they are).
    ``optimlab.lab.write_report(results, out)`` writes the same report as the CLI.
    """
    chosen = resolve_task(task, model, data, heldout, loss, metric, metric_name)
    specs = resolve_specs(chosen, optimizers)
    settings = resolve_settings(chosen, steps=steps, epochs=epochs, seeds=seeds,
                                batch_size=batch_size, schedule=schedule, warmup=warmup,
                                clip=clip)
    return run_all(chosen, specs, settings, progress=progress, threads=threads)
