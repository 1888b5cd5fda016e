"""The pages of the three commands: which figures, tables and words each report holds.

Every number on a page is computed from the records; the words around them say how to
read the pictures.
"""

from __future__ import annotations

from pathlib import Path

from optimlab.lab import figures, surface_figures
from optimlab.lab.report import (
    Page,
    Picture,
    environment_facts,
    write_json,
    write_metrics,
    write_page,
)
from optimlab.lab.results import Results
from optimlab.lab.surfaces import SURFACES
from optimlab.lab.tables import compare_table, number, sweep_table, trajectory_table

# --- optimlab compare ---------------------------------------------------------------------


def band_text(seeds: int) -> str:
    return (f"Line: mean over {seeds} seeds; band: min–max over seeds. " if seeds > 1
            else "One seed. ")


def compare_pictures(results: Results) -> list[Picture]:
    """Loss vs step and vs time, the headline metric, the lr, the gradient's norm and the
    parameters' norm."""
    task, settings = results.task, results.settings
    groups = {label: results.runs_of(label) for label in results.labels
              if results.runs_of(label)}
    band = band_text(len(settings.seeds))
    interval = (f"Each point is the mean minibatch loss over {settings.log_every} steps. "
                if settings.log_every > 1 else "")
    headline, draw, loss = task.headline, figures.curves, task.loss_label
    evaluations = settings.steps // settings.eval_every
    return [
        Picture("loss_vs_step", f"{loss} vs step",
                band + interval + "✕ marks where a run's loss became non-finite.",
                figures.png(draw(groups, "train_loss", f"{task.name}: {loss} vs step",
                                 "step", loss))),
        Picture("loss_vs_time", f"{loss} vs wall-clock time",
                band + "Time is training time (evaluation excluded), mean over seeds at "
                "each step: the cost of each optimizer's step is in it.",
                figures.png(draw(groups, "train_loss", f"{task.name}: {loss} vs time",
                                 "training time (s)", loss, x="wall"))),
        Picture("metric_vs_step", f"{headline.label} vs step",
                band + f"Evaluated every {settings.eval_every} steps ({evaluations} times) "
                "and before the first step; dashed: the target; inset: the second half.",
                figures.png(draw(groups, headline.key, f"{task.name}: {headline.label}",
                                 "step", headline.label, target=headline.target,
                                 zoom=True, log=None if not headline.higher_is_better
                                 else False))),
        Picture("lr_schedule", "learning rate vs step",
                f"The lr of each optimizer's first param group, as the runs used it "
                f"(schedule: {settings.training.schedule}).",
                figures.png(figures.lr_figure(groups, f"{task.name}: learning rate"))),
        Picture("grad_norm", "gradient norm vs step",
                band + "The global L2 norm of the gradient before clipping "
                "(optimlab.clip_grad_norm): the mean over each logging interval when "
                "clipping, else its value at the logged step"
                + (f"; dashed: the clipping threshold {number(settings.training.clip)}."
                   if settings.training.clip else "; no clipping."),
                figures.png(draw(groups, "grad_norm", f"{task.name}: gradient norm",
                                 "step", "‖g‖₂ before clipping",
                                 target=settings.training.clip, target_label="clip"))),
        Picture("param_norm", "parameter norm vs step",
                band + "The L2 norm of all parameters together: how far the weights grow, "
                "and how weight decay (L2 in Adam, decoupled in AdamW) holds them.",
                figures.png(draw(groups, "param_norm", f"{task.name}: parameter norm",
                                 "step", "‖θ‖₂ (all parameters)"))),
    ]


def compare_lead(results: Results) -> list[str]:
    """The opening lines: the task, and which optimizer won by how much (computed)."""
    task, metric = results.task, results.task.headline
    rows = results.summary()
    lines = [f"Task {task.name}: {task.description}. {len(results.runs)} runs: "
             f"{len(rows)} optimizers × {len(results.settings.seeds)} seeds, "
             f"{results.settings.steps} steps each."]
    winner = results.winner()
    if winner is not None:
        line = (f"Best final {metric.label}: {winner.optimizer} "
                f"({number(winner.final_mean)} ± {number(winner.final_std, 2)})")
        if winner.steps_to_target is not None:
            line += (f", reaching the target {number(metric.target)} after "
                     f"{number(winner.steps_to_target)} steps on average")
        lines.append(line + ".")
    lines += fastest_lines(rows, metric.target)
    diverged = sum(len(row.diverged) for row in rows)
    if diverged:
        lines.append(f"{diverged} run(s) diverged (loss became non-finite); they are marked "
                     "✕ in the figures and listed in the table.")
    if results.interrupted:
        lines.append("Interrupted (Ctrl-C): this report shows the runs that finished.")
    return lines


def fastest_lines(rows, target: float | None) -> list[str]:
    """Who reached the target first, in steps and in seconds (the two can differ: an
    adaptive step costs more than an SGD step)."""
    reached = [row for row in rows if row.reached == row.runs and row.steps_to_target]
    if target is None or not reached:
        return []
    by_steps = min(reached, key=lambda row: row.steps_to_target)
    by_time = min(reached, key=lambda row: row.time_to_target)
    line = (f"First to the target {number(target)} in every seed: {by_steps.optimizer} after "
            f"{number(by_steps.steps_to_target)} steps")
    if by_time is by_steps:
        return [line + f" ({number(by_time.time_to_target)} s of training)."]
    return [line + f"; in wall-clock time, {by_time.optimizer} "
                   f"({number(by_time.time_to_target)} s)."]


def settings_facts(results: Results) -> list[tuple[str, str]]:
    settings, training = results.settings, results.settings.training
    return [("task", results.task.name), ("optimizers", ", ".join(results.labels)),
            ("seeds", ", ".join(map(str, settings.seeds))), ("steps", str(settings.steps)),
            ("batch size", str(settings.batch_size)), ("schedule", training.schedule),
            ("warmup", f"{number(training.warmup)} of the steps"),
            ("clip", "none" if training.clip is None else f"max norm {number(training.clip)}"),
            ("weight decay", "weights only (optimlab.param_groups)" if training.decay_groups
             else "every parameter"),
            *environment_facts()]


def write_compare(results: Results, folder: Path) -> Path:
    """The run folder of ``optimlab compare``."""
    write_metrics(folder / "metrics.csv", results.runs)
    write_json(folder / "summary.json", results.to_json())
    page = Page(f"optimlab compare — {results.task.name}", compare_lead(results),
                [compare_table(results)], compare_pictures(results), settings_facts(results),
                files=["metrics.csv", "summary.json"])
    return write_page(folder, page)


# --- optimlab sweep -----------------------------------------------------------------------


def sweep_lead(sweep) -> list[str]:
    task, metric = sweep.results.task, sweep.results.task.headline
    lines = [f"Task {task.name}: {task.description}. Final {metric.label} after "
             f"{sweep.results.settings.steps} steps at {len(sweep.lrs)} learning rates from "
             f"{number(min(sweep.lrs))} to {number(max(sweep.lrs))}, "
             f"{len(sweep.results.settings.seeds)} seed(s) each."]
    spans = []
    for base in sweep.bases:
        _, good = sweep.good_range(base)
        if good:
            lrs = [p.lr for p in good]
            spans.append((max(lrs) / min(lrs), base.label))
    if spans:
        widest = max(spans)
        lines.append(f"Most forgiving: {widest[1]}, good over a factor of {number(widest[0])} "
                     f"in lr (the flattest curve). A flat curve means the lr matters less.")
    if sweep.results.interrupted:
        lines.append("Interrupted (Ctrl-C): this report shows the runs that finished.")
    return lines


def write_sweep(sweep, folder: Path) -> Path:
    """The run folder of ``optimlab sweep``."""
    results, metric = sweep.results, sweep.results.task.headline
    write_metrics(folder / "metrics.csv", results.runs)
    summary = {"task": results.task.name, "lrs": sweep.lrs, "tolerance": sweep.tolerance,
               "points": {base.label: [p.__dict__ for p in sweep.points(base)]
                          for base in sweep.bases},
               "runs": [run.to_dict() for run in results.runs],
               "interrupted": results.interrupted}
    write_json(folder / "summary.json", summary)
    figure = figures.sweep_figure(
        {base.label: sweep.points(base) for base in sweep.bases},
        f"{results.task.name}: final {metric.label} vs learning rate",
        f"final {metric.label}", metric.higher_is_better, metric.target)
    picture = Picture("sweep", f"final {metric.label} vs learning rate",
                      "Each point: the final value after the last step (mean over seeds that "
                      "finished). ✕ on the floor: a run diverged at that lr.",
                      figures.png(figure))
    page = Page(f"optimlab sweep — {results.task.name}", sweep_lead(sweep),
                [sweep_table(sweep)], [picture], settings_facts(results),
                files=["metrics.csv", "summary.json"])
    return write_page(folder, page)


# --- optimlab trajectories ------------------------------------------------------------------


def surface_pictures(name: str, results: Results, gif: bool) -> list[Picture]:
    surface = SURFACES[name]
    runs = surface_figures.runs_by_label(results.runs)
    steps = results.settings.steps
    pictures = [
        Picture(f"{name}_paths", f"{name}: paths",
                "Every step's position; start: white circle, minimum: star.",
                figures.png(surface_figures.paths_figure(surface, runs, steps))),
        Picture(f"{name}_loss", f"{name}: f(x, y) vs step", "The value along each path.",
                figures.png(surface_figures.loss_figure(surface, runs))),
        Picture(f"{name}_step_length", f"{name}: length of each step",
                "How far each step moves: Adam's first step is lr long whatever the "
                "gradient; AdaGrad's steps shrink as its sum of squared gradients grows.",
                figures.png(surface_figures.step_length_figure(surface, runs))),
    ]
    if gif and surface_figures.pillow_available():
        pictures.append(Picture(f"{name}_paths_animated", f"{name}: paths, animated",
                                "The paths growing step by step.",
                                surface_figures.animation_gif(surface, runs), kind="gif"))
    return pictures


def write_trajectories(done, folder: Path) -> Path:
    """The run folder of ``optimlab trajectories``."""
    every_run = [run for results in done.surfaces.values() for run in results.runs]
    write_metrics(folder / "metrics.csv", every_run)
    write_json(folder / "summary.json",
               {name: results.to_json() for name, results in done.surfaces.items()})
    pictures = [picture for name, results in done.surfaces.items()
                for picture in surface_pictures(name, results, done.gif)]
    tables = [trajectory_table(results) for results in done.surfaces.values()]
    first = next(iter(done.surfaces.values()))
    lead = ["Each optimizer from the same start point, exact gradients, the lr of "
            "`optimlab optimizers` for each surface: "
            + "; ".join(f"{name}: {results.task.description}"
                        for name, results in done.surfaces.items()) + "."]
    if done.interrupted:
        lead.append("Interrupted (Ctrl-C): this report shows the runs that finished.")
    facts = [("optimizers", ", ".join(first.labels)), *environment_facts()]
    page = Page("optimlab trajectories", lead, tables, pictures, facts,
                files=["metrics.csv", "summary.json"])
    return write_page(folder, page)
