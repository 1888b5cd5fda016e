"""The page of ``optimlab sweep``: the lr curves, the lr × λ heatmaps, the table, the lead.

Every number on the page is computed from the records; the lead says which optimizer is
the most forgiving and, with λ swept, how each one's best cell compares with the others'.
"""

from __future__ import annotations

from pathlib import Path

from optimlab.lab.analysis.tables import number, plural, sweep_table
from optimlab.lab.analysis.verdicts import TEST, decide
from optimlab.lab.rendering import figures, sweep_figures
from optimlab.lab.rendering.pages import settings_facts, tied_text
from optimlab.lab.rendering.report import Page, Picture, write_json, write_metrics, write_page
from optimlab.lab.running.sweep import SweepResults


def best_cells_line(sweep: SweepResults) -> list[str]:
    """Each optimizer's best (lr, λ) cell, and whether the best cells differ beyond noise
    (the seed claim that Adam + L2 and AdamW tie at each form's best λ, or not)."""
    metric = sweep.results.task.headline
    cells = {base.label: sweep.best_cell(base) for base in sweep.bases}
    found = {label: cell for label, cell in cells.items() if cell is not None}
    if not found:
        return []
    parts = [f"{label} at lr={point.lr:g}, λ={wd:g} ({number(point.final)})"
             for label, (wd, point) in found.items()]
    lines = [f"Best cell of each optimizer: {'; '.join(parts)}."]
    verdict = decide({label: list(point.finals) for label, (_, point) in found.items()},
                     metric.higher_is_better)
    if len(found) > 1 and verdict.winner:
        lines.append(f"At their best cells, {verdict.winner} is better beyond the seeds' "
                     f"noise ({TEST}).")
    elif len(found) > 1:
        lines.append(f"At their best cells, {tied_text(verdict.tied)} are tied: "
                     f"{verdict.reason}.")
    if all(wd == 0 for wd, _ in found.values()):
        lines.append("Every optimizer's best cell has λ = 0: weight decay did not help on "
                     "this task at this budget.")
    return lines


def sweep_lead(sweep: SweepResults) -> list[str]:
    results = sweep.results
    task, metric, settings = results.task, results.task.headline, results.settings
    grid = (f" × {plural(len(sweep.weight_decays), 'weight decay')} λ from "
            f"{number(min(sweep.weight_decays))} to {number(max(sweep.weight_decays))}"
            if sweep.weight_decays else "")
    lines = [f"Task {task.name}: {task.description}. Final {metric.label} after "
             f"{settings.steps} steps at {plural(len(sweep.lrs), 'learning rate')} from "
             f"{number(min(sweep.lrs))} to {number(max(sweep.lrs))}{grid}, "
             f"{plural(len(settings.seeds), 'seed')} each."]
    spans = {}
    for line in sweep.lines:
        _, good = sweep.good_range(line)
        if good:
            lrs = [p.lr for p in good]
            spans[line.label] = max(lrs) / min(lrs)
    widest = max(spans.values(), default=1.0)
    if widest > 1:
        names = tied_text([label for label, span in spans.items() if span == widest])
        lines.append(f"Most forgiving: {names}, good (within {sweep.tolerance:.0%} of the "
                     f"best) over a factor of {number(widest)} in lr: the flattest curve. A "
                     "flat curve means the lr matters less.")
    elif spans:
        lines.append(f"No optimizer was good (within {sweep.tolerance:.0%} of its best) at "
                     "more than one lr of this grid.")
    if sweep.weight_decays:
        lines += best_cells_line(sweep)
    failed = sum(p.failed for line in sweep.lines for p in sweep.points(line))
    if failed:
        lines.append(f"{plural(failed, 'run')} failed (diverged, or ended no better than "
                     "chance): ✕ in the figures, counted in the table.")
    if results.interrupted:
        lines.append("Interrupted (Ctrl-C): this report shows the runs done; "
                     f"{plural(sum(map(len, results.not_run().values())), 'run')} of the "
                     "grid did not start.")
    return lines


def sweep_pictures(sweep: SweepResults) -> list[Picture]:
    results, metric = sweep.results, sweep.results.task.headline
    figure = sweep_figures.sweep_figure(
        {line.label: sweep.points(line) for line in sweep.lines},
        f"{results.task.name}: final {metric.label} vs learning rate",
        f"final {metric.label}", metric.higher_is_better, metric.target,
        results.task.chance_level(), sweep_figures.line_styles(sweep))
    pictures = [Picture("sweep", f"final {metric.label} vs learning rate",
                        "Each point: the final value after the last step (mean over seeds "
                        "that finished). ✕ on the floor: a run diverged, or ended no better "
                        "than chance, at that lr.", figures.png(figure))]
    if sweep.weight_decays:
        heatmap = sweep_figures.heatmap_figure(
            sweep, f"{results.task.name}: final {metric.label} over lr × weight decay",
            f"final {metric.label}")
        pictures.append(Picture(
            "lr_wd_heatmap", "learning rate × weight decay",
            "One panel per optimizer on one colour scale (brighter is better), each cell "
            "the mean final value over seeds; grey ✕: every run of the cell failed "
            "(diverged, or no better than chance); framed ★: the optimizer's best cell. "
            "Adam adds λθ to the gradient (L2, scaled by its adaptive denominator); "
            "AdamW shrinks θ by lr·λ apart from it (Loshchilov & Hutter's figure).",
            figures.png(heatmap)))
    return pictures


def write_sweep(sweep: SweepResults, folder: Path) -> Path:
    """The run folder of ``optimlab sweep``."""
    results = sweep.results
    write_metrics(folder / "metrics.csv", results.runs)
    best = ({base.label: sweep.best_cell(base) for base in sweep.bases}
            if sweep.weight_decays else {})
    summary = {"task": results.task.name, "lrs": sweep.lrs,
               "weight_decays": sweep.weight_decays, "tolerance": sweep.tolerance,
               "chance": results.task.chance_level(),
               "points": {line.label: [p.__dict__ | {"failed": p.failed}
                                       for p in sweep.points(line)]
                          for line in sweep.lines},
               "best_cells": {label: None if cell is None else
                              {"weight_decay": cell[0], "lr": cell[1].lr,
                               "final": cell[1].final}
                              for label, cell in best.items()} or None,
               "hyperparameters": results.hyperparameters(),
               "runs": [run.to_dict() for run in results.runs],
               "interrupted": results.interrupted}
    write_json(folder / "summary.json", summary)
    grid = "lr × λ" if sweep.weight_decays else "lr"
    optimizers = (f"{', '.join(base.label for base in sweep.bases)}, each at every {grid} of "
                  "the grid")
    page = Page(f"optimlab sweep — {results.task.name}", sweep_lead(sweep),
                [sweep_table(sweep)], sweep_pictures(sweep),
                settings_facts(results, optimizers), files=["metrics.csv", "summary.json"])
    return write_page(folder, page)
