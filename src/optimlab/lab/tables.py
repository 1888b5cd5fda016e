"""Tables: summaries as rows of text, for the report (HTML) and the terminal alike."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from optimlab.lab.results import Results, Summary


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
    """A value to ``digits`` significant figures; '—' for none."""
    return "—" if value is None else f"{value:.{digits}g}"


def mean_std(mean: float | None, std: float | None) -> str:
    return "—" if mean is None else f"{number(mean)} ± {number(std, 2)}"


def diverged_text(row: Summary) -> str:
    return "; ".join(f"seed {seed} at step {step}" for seed, step in row.diverged) or "none"


def compare_table(results: Results) -> Table:
    """The comparison's table: one row per optimizer spec."""
    metric = results.task.headline
    sign = "≥" if metric.higher_is_better else "≤"
    target = (f"{metric.label} {sign} {number(metric.target)}" if metric.target is not None
              else "a target (none set for this task)")
    table = Table(
        caption=(f"Final {metric.label}: after the last step, over the runs that finished "
                 f"(mean ± sample std over seeds). Best: the best value of any evaluation of "
                 f"any seed. Steps/s: training steps per second of training time. "
                 f"To target: first evaluation with {target}, mean over the runs that "
                 f"reached it (how many of them in brackets)."),
        header=["optimizer", "lr", f"final {metric.label}", "best", "steps/s",
                "steps to target", "time to target (s)", "diverged"])
    for row in results.summary():
        reached = f"({row.reached}/{row.runs})"
        table.add([row.optimizer, number(row.lr), mean_std(row.final_mean, row.final_std),
                   number(row.best), number(row.steps_per_second),
                   f"{number(row.steps_to_target)} {reached}",
                   f"{number(row.time_to_target)} {reached}", diverged_text(row)],
                  flag=bool(row.diverged))
    return table


def sweep_table(sweep) -> Table:
    """Per optimizer: the best lr, and how wide the range of good lrs is."""
    metric = sweep.results.task.headline
    table = Table(
        caption=(f"Final {metric.label} at each lr: mean over the seeds that finished. "
                 f"Good lrs: those whose final value is within {sweep.tolerance:.0%} "
                 f"(relative) of the optimizer's best; their span in decades "
                 f"(log10 of highest/lowest) measures how forgiving the optimizer is."),
        header=["optimizer", "best lr", f"best final {metric.label}", "good lrs",
                "good span (decades)", "diverged at lr"])
    for base in sweep.bases:
        best, good = sweep.good_range(base)
        diverged = [p for p in sweep.points(base) if p.diverged]
        lrs = [p.lr for p in good]
        span = math.log10(max(lrs) / min(lrs)) if lrs else None
        table.add([base.label, number(best.lr if best else None),
                   number(best.final if best else None),
                   f"{number(min(lrs))} – {number(max(lrs))}" if lrs else "—",
                   number(span, 2),
                   ", ".join(f"{number(p.lr)} ({p.diverged}/{p.runs})" for p in diverged)
                   or "none"], flag=bool(diverged))
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
