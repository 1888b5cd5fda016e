"""Tables: summaries as rows of text, for the report (HTML) and the terminal alike."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from optimlab.lab.analysis.results import Results, Summary
from optimlab.lab.inputs.specs import value_text


@dataclass
class Table:
    """A caption, a header and rows of cells; ``flagged[i]`` marks row i (e.g. diverged);
    an optional title when a page has several tables."""

    caption: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    flagged: list[bool] = field(default_factory=list)
    title: str = ""

    def add(self, cells: list[str], flag: bool = False) -> None:
        self.rows.append(cells)
        self.flagged.append(flag)

    def to_text(self) -> str:
        """Aligned plain text (what ``optimlab compare`` prints)."""
        widths = [max(len(row[i]) for row in [self.header, *self.rows])
                  for i in range(len(self.header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                 .rstrip() for row in [self.header, *self.rows]]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)


def number(value: float | None, digits: int = 3) -> str:
    """A value to ``digits`` significant figures ('1013', not '1.01e+03'); '—' for none."""
    if value is None:
        return "—"
    if 10 ** digits <= abs(value) < 1e6:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def mean_std(mean: float | None, std: float | None, digits: int = 3) -> str:
    """'mean ± std'; the mean alone when there is no spread to show (one seed)."""
    if mean is None:
        return "—"
    return number(mean, digits) if std is None else f"{number(mean, digits)} ± {number(std, 2)}"


def plural(count: int, noun: str) -> str:
    """'1 optimizer', '3 optimizers'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def studies_text(count: int) -> str:
    """'1 study', '3 studies'."""
    return f"{count} study" if count == 1 else f"{count} studies"


def seeds_text(seeds: list[int]) -> str:
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def diverged_text(row: Summary) -> str:
    return "; ".join(f"seed {seed} at step {step}" for seed, step in row.diverged) or "none"


def status_text(row: Summary) -> str:
    """What went wrong with a spec's runs, if anything: diverged, interrupted, not run."""
    parts = [f"seed {seed} diverged at step {step}" for seed, step in row.diverged]
    parts += [f"seed {seed} interrupted after {steps} steps" for seed, steps in row.interrupted]
    if row.not_run:
        parts.append(f"{seeds_text(row.not_run)} not run")
    return "; ".join(parts) or "finished"


def steps_range(steps: list[int]) -> str:
    """Steps to the target over seeds: one value if they agree, else 'low–high'."""
    if not steps:
        return "—"
    low, high = min(steps), max(steps)
    return str(low) if low == high else f"{low}–{high}"


def share_text(row: Summary) -> str:
    if row.step_ms is None:
        return "—"
    share = f" ({row.step_share:.0%})" if row.step_share is not None else ""
    return mean_std(row.step_ms, row.step_ms_std, 2) + share


def compare_table(results: Results) -> Table:
    """The comparison's table: one row per optimizer spec, then the specs not run."""
    metric, settings = results.task.headline, results.settings
    sign = "≥" if metric.higher_is_better else "≤"
    target = (f"{metric.label} {sign} {number(metric.target)}" if metric.target is not None
              else "a target (none set for this task)")
    spread = "mean ± sample std over seeds" if len(settings.seeds) > 1 else "one seed"
    table = Table(
        caption=(f"Final {metric.label}: after the last step, over the runs that finished "
                 f"({spread}). Best: the best value of any evaluation of any seed. "
                 f"Steps/s: training steps per second of training time (forward, backward, "
                 f"step; each spec warmed up by {plural(settings.untimed_steps, 'untimed step')} "
                 f"first); optimizer step: the time of optimizer.step() alone, and its share "
                 f"of the training time. Engine: what stepped the tensors. Steps to target: "
                 f"the first evaluation with {target}, over the runs that reached it (how many "
                 f"in brackets); evaluated every {settings.eval_every} steps, so a value is a "
                 f"multiple of {settings.eval_every}, shown as the range over seeds."),
        header=["optimizer", "engine", "lr", f"final {metric.label}", "best", "steps/s",
                "optimizer step (ms)", "steps to target", "time to target (s)", "runs"])
    for row in results.summary():
        reached = f"({row.reached}/{row.runs})"
        table.add([row.optimizer, row.engine, number(row.lr),
                   mean_std(row.final_mean, row.final_std), number(row.best),
                   mean_std(row.steps_per_second, row.steps_per_second_std),
                   share_text(row), f"{steps_range(row.target_steps)} {reached}",
                   f"{number(row.time_to_target)} {reached}", status_text(row)],
                  flag=bool(row.diverged or row.interrupted or row.not_run))
    for label in (label for label in results.not_run() if not results.runs_of(label)):
        table.add([label, "—", "—", "—", "—", "—", "—", "—", "—",
                   f"not run ({seeds_text(list(settings.seeds))})"], flag=True)
    return table


LAST = ("maximize", "decoupled_weight_decay", "state_dtype", "preset", "engine", "nonfinite")


def hyperparameter_table(results: Results) -> Table:
    """Per spec: the hyperparameters its optimizer resolved to, and how it trained."""
    table = Table(
        caption=("What each spec resolved to on this task: the spec's options, else the "
                 "task's lr, else the class's defaults (summary.json: \"hyperparameters\"). "
                 "lr is the peak of the schedule."),
        header=["optimizer", "training", "hyperparameters"], title="Hyperparameters")
    training_keys = ("lr", "schedule", "warmup", "clip")
    for label, values in results.hyperparameters().items():
        training = ", ".join(f"{key}={value_text(values[key])}" for key in training_keys
                             if key in values)
        # the update's numbers and options first; how it runs (LAST) after them
        keys = sorted((key for key, value in values.items()
                       if key not in training_keys and value is not None),
                      key=lambda key: key in LAST)
        table.add([label, training, ", ".join(f"{key}={value_text(values[key])}"
                                              for key in keys)])
    return table


def sweep_table(sweep) -> Table:
    """Per optimizer (at each λ, when swept): the best lr, and how wide the range of good
    lrs is."""
    metric = sweep.results.task.headline
    chance = sweep.results.task.chance_level()
    failed = (f"diverged, or no better than chance ({number(chance)})" if chance is not None
              else "diverged")
    table = Table(
        caption=(f"Final {metric.label} at each lr: mean over the seeds that finished. "
                 f"Good lrs: those whose final value is within {sweep.tolerance:.0%} "
                 f"(relative) of the optimizer's best; their span in decades "
                 f"(log10 of highest/lowest) measures how forgiving the optimizer is. "
                 f"Failed: runs that {failed}, as failed/runs; a row is marked when it "
                 f"failed at every lr."),
        header=["optimizer", "best lr", f"best final {metric.label}", "good lrs",
                "good span (decades)", "failed at lr"])
    for line in sweep.lines:
        best, good = sweep.good_range(line)
        failures = [p for p in sweep.points(line) if p.failed]
        lrs = [p.lr for p in good]
        span = math.log10(max(lrs) / min(lrs)) if lrs else None
        table.add([line.label, number(best.lr if best else None),
                   number(best.final if best else None),
                   f"{number(min(lrs))}–{number(max(lrs))}" if lrs else "—",
                   number(span, 2),
                   ", ".join(f"{number(p.lr)} ({p.failed}/{p.runs})" for p in failures)
                   or "none"], flag=best is None)  # failures at the grid's ends are expected
    return table


def trajectory_table(results: Results) -> Table:
    """Per optimizer on one surface: where it ended and how fast it got there."""
    metric = results.task.headline
    table = Table(
        caption=(f"{results.task.name}: final f(x, y) and {metric.label} after "
                 f"{results.settings.steps} steps from the start point; steps until the "
                 f"distance first fell to {number(metric.target)}."),
        header=["optimizer", "lr", "final f(x, y)", f"final {metric.label}",
                "steps to target", "diverged"], title=results.task.name)
    for row in results.summary():
        run = results.runs_of(row.optimizer)[0]
        table.add([row.optimizer, number(row.lr), number(run.last("train_loss")),
                   number(run.last(metric.key)), number(row.steps_to_target),
                   diverged_text(row)], flag=bool(row.diverged))
    return table
