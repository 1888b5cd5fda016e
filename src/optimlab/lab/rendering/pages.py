"""The pages of the three commands: which figures, tables and words each report holds.

Every number on a page is computed from the records; the words around them say how to
read the pictures.
"""

from __future__ import annotations

from pathlib import Path

from optimlab.lab.analysis.results import Results, Spread, Summary
from optimlab.lab.analysis.tables import (
    compare_table,
    hyperparameter_table,
    mean_std,
    number,
    plural,
    seeds_text,
    steps_range,
    trajectory_table,
)
from optimlab.lab.analysis.verdicts import TEST
from optimlab.lab.rendering import figures, surface_figures
from optimlab.lab.rendering.report import (
    Page,
    Picture,
    environment_facts,
    write_json,
    write_metrics,
    write_page,
)
from optimlab.lab.workloads.surfaces import SURFACES

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
    seeds = len(settings.seeds)
    band = band_text(seeds)
    interval = (f"Each point is the mean minibatch loss over {settings.log_every} steps. "
                if settings.log_every > 1 else "")
    diverged = "A diverged run is drawn on its own, ending in ✕, outside the mean and the "\
               "axis limits. "
    headline, draw, loss = task.headline, figures.curves, task.loss_label
    evaluations = settings.steps // settings.eval_every
    time_band = ("Line: mean over seeds; band: the min–max of the seeds' training time at "
                 "each step (how much their speed varied). " if seeds > 1 else "One seed. ")
    return [
        Picture("loss_vs_step", f"{loss} vs step", band + interval + diverged,
                figures.png(draw(groups, "train_loss", f"{task.name}: {loss} vs step",
                                 "step", loss))),
        Picture("loss_vs_time", f"{loss} vs wall-clock time",
                time_band + "Time is training time (forward, backward, clipping and the "
                "optimizer's step; evaluation excluded), after an untimed warm-up of each "
                "spec: the cost of each optimizer's step, and of its engine, is in it.",
                figures.png(draw(groups, "train_loss", f"{task.name}: {loss} vs time",
                                 "training time (s)", loss, x="wall"))),
        Picture("metric_vs_step", f"{headline.label} vs step",
                band + f"Evaluated every {settings.eval_every} steps ({evaluations} times) "
                "and before the first step; dashed: the target; right: the second half, "
                "zoomed.",
                figures.png(draw(groups, headline.key, f"{task.name}: {headline.label}",
                                 "step", headline.label, target=headline.target,
                                 zoom=True, log=None if not headline.higher_is_better
                                 else False))),
        Picture("lr_schedule", "learning rate vs step",
                "The lr of each optimizer's first param group, as the runs used it "
                f"(schedule: {schedules_text(results)}).",
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
                "and how weight decay holds them where a spec has it (its λ and form are "
                "in the hyperparameters table: L2 added to the gradient, or decoupled).",
                figures.png(draw(groups, "param_norm", f"{task.name}: parameter norm",
                                 "step", "‖θ‖₂ (all parameters)"))),
    ]


def schedules_text(results: Results) -> str:
    """The schedule, or each spec's when they differ."""
    training = results.settings.training
    own = {spec.label: training.updated(spec.training) for spec in results.specs}
    kinds = {f"{t.schedule}, warmup {warmup_text(t.warmup)}" for t in own.values()}
    if len(kinds) == 1:
        return kinds.pop()
    return "; ".join(f"{label}: {t.schedule}, warmup {warmup_text(t.warmup)}"
                     for label, t in own.items())


def warmup_text(warmup: int | float) -> str:
    """'none', '5% of the steps' (a fraction) or '100 steps'."""
    if not warmup:
        return "none"
    return f"{warmup:.0%} of the steps" if isinstance(warmup, float) else f"{warmup} steps"


def value_with_spread(row: Summary) -> str:
    return f"{row.optimizer} ({mean_std(row.final_mean, row.final_std)})"


def tied_text(names: list[str]) -> str:
    """'a, b and c' for a list of names."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def verdict_line(results: Results) -> str | None:
    """Best final metric: a winner only beyond the seeds' noise, else who is tied."""
    metric = results.task.headline
    verdict = results.verdict()
    rows = {row.optimizer: row for row in results.summary()}
    if verdict.best is None:
        return None
    if verdict.winner:
        return (f"Best final {metric.label}: {value_with_spread(rows[verdict.winner])}, "
                f"better than every other beyond the seeds' noise ({TEST}).")
    if len(verdict.tied) == 1:
        return (f"Final {metric.label}: {value_with_spread(rows[verdict.best])}; no winner "
                f"to name: {verdict.reason}.")
    tied = tied_text([value_with_spread(rows[label]) for label in verdict.tied])
    behind = len(rows) - len(verdict.tied)
    rest = f"; {plural(behind, 'other')} behind beyond it" if behind else ""
    return (f"Best final {metric.label}: no winner — {tied} are tied, {verdict.reason}"
            f"{rest}.")


def target_lines(results: Results) -> list[str]:
    """Who reached the target first in every seed, in steps and in training time (an
    adaptive step costs more than an SGD step): a winner only beyond noise."""
    target = results.task.headline.target
    rows = {row.optimizer: row for row in results.summary()}
    lines = []
    for by in ("steps", "time"):
        verdict = results.target_verdict(by)
        if verdict is None or target is None:
            return []

        def amount(label: str, by: str = by) -> str:
            row = rows[label]
            if by == "steps":
                return f"{label} ({steps_range(row.target_steps)})"
            spread = Spread.of(row.target_times).std
            return f"{label} ({mean_std(row.time_to_target, spread, 2)} s)"

        where = "in steps" if by == "steps" else "in training time"
        if verdict.winner:
            lines.append(f"First to the target {number(target)} {where}, in every seed: "
                         f"{amount(verdict.winner)}, beyond the seeds' noise.")
        else:
            behind = len(verdict.p_values) + 1 - len(verdict.tied)
            rest = f"; {plural(behind, 'other')} behind beyond it" if behind else ""
            lines.append(f"First to the target {number(target)} {where}: no winner — "
                         f"{tied_text([amount(label) for label in verdict.tied])} are tied, "
                         f"{verdict.reason}{rest}.")
    return lines


def alike_lines(results: Results) -> list[str]:
    metric = results.task.headline
    return [f"{pair.first} and {pair.second} ran practically the same: their mean curves "
            f"never parted by more than the seeds' spread ({metric.label}: largest gap "
            f"{number(pair.gap, 2)}, typical spread {number(pair.spread, 2)}); both are "
            f"drawn, in different line styles and markers."
            for pair in results.alike()]


def engine_line(rows: list[Summary]) -> list[str]:
    engines = {row.optimizer: row.engine for row in rows}
    if len(set(engines.values())) < 2:
        return []
    listed = "; ".join(f"{label}: {engine}" for label, engine in engines.items())
    return [f"The specs ran on different engines ({listed}): steps/s and time compare "
            f"engines as well as algorithms; the optimizer-step column shows the step's own "
            f"cost."]


def fault_lines(results: Results, rows: list[Summary]) -> list[str]:
    lines = []
    diverged = sum(len(row.diverged) for row in rows)
    if diverged:
        lines.append(f"{plural(diverged, 'run')} diverged (loss became non-finite); they are "
                     "marked ✕ in the figures, left out of the means and the axis limits, "
                     "and listed in the table.")
    if results.interrupted:
        stopped = [f"{row.optimizer} seed {seed} after {steps} steps"
                   for row in rows for seed, steps in row.interrupted]
        line = "Interrupted (Ctrl-C): this report shows the runs done"
        line += f", and the steps of the one stopped ({'; '.join(stopped)})" if stopped else ""
        not_run = "; ".join(f"{label} ({seeds_text(seeds)})"
                            for label, seeds in results.not_run().items())
        line += f". Not run: {not_run}." if not_run else "."
        lines.append(line)
    return lines


def compare_lead(results: Results) -> list[str]:
    """The opening lines: the task, who won by how much (computed), and what to mind."""
    task, settings = results.task, results.settings
    rows = results.summary()
    lines = [f"Task {task.name}: {task.description}. {plural(len(results.runs), 'run')}: "
             f"{plural(len(results.specs), 'optimizer')} × "
             f"{plural(len(settings.seeds), 'seed')}, {settings.steps} steps each."]
    verdict = verdict_line(results)
    if verdict:
        lines.append(verdict)
    lines += target_lines(results) + alike_lines(results) + engine_line(rows)
    return lines + fault_lines(results, rows)


def settings_facts(results: Results, optimizers: str | None = None
                   ) -> list[tuple[str, str]]:
    settings, training = results.settings, results.settings.training
    own = " (a spec's own schedule, warmup or clip wins: see its label)"
    return [("task", results.task.name),
            ("optimizers", optimizers or ", ".join(results.labels)),
            ("seeds", ", ".join(map(str, settings.seeds))), ("steps", str(settings.steps)),
            ("batch size", str(settings.batch_size)), ("schedule", training.schedule + own),
            ("warmup", warmup_text(training.warmup)),
            ("clip", "none" if training.clip is None else f"max norm {number(training.clip)}"),
            ("weight decay", "weights only (optimlab.param_groups)" if training.decay_groups
             else "every parameter"),
            ("timing", f"{plural(settings.untimed_steps, 'untimed warm-up step')} per spec "
             "before its timed runs; optimizer.step() timed apart"),
            *environment_facts(results.threads)]


def write_compare(results: Results, folder: Path) -> Path:
    """The run folder of ``optimlab compare``."""
    write_metrics(folder / "metrics.csv", results.runs)
    write_json(folder / "summary.json", results.to_json())
    page = Page(f"optimlab compare — {results.task.name}", compare_lead(results),
                [compare_table(results), hyperparameter_table(results)],
                compare_pictures(results), settings_facts(results),
                files=["metrics.csv", "summary.json"])
    return write_page(folder, page)


# --- optimlab trajectories ------------------------------------------------------------------


def surface_pictures(name: str, results: Results, gif: bool) -> list[Picture]:
    surface = SURFACES[name]
    runs = surface_figures.runs_by_label(results.runs)
    steps = results.settings.steps
    pictures = [
        Picture(f"{name}_paths", f"{name}: paths",
                "Every step's position (dots); start: white circle; minimum: star; each "
                "path ends at its own black-edged marker. Longer paths are drawn first, so "
                "that shorter ones lie on top. The window grows to hold the paths, up to "
                "twice the surface's box each way; ▲: where a path left it.",
                figures.png(surface_figures.paths_figure(surface, runs, steps))),
        Picture(f"{name}_loss", f"{name}: f(x, y) vs step", "The value along each path.",
                figures.png(surface_figures.loss_figure(surface, runs))),
        Picture(f"{name}_step_length", f"{name}: length of each step",
                "How far each step moves, ‖Δ(x, y)‖. Adam's first step moves every "
                "coordinate by lr whatever the gradient's size (m̂₁/√v̂₁ = sign g, ε aside): "
                "a step of length lr·√2 here, in 2-D. Without bias correction it is "
                "(1 − β₁)/√(1 − β₂) ≈ 3.16 times that, not smaller. AdaGrad divides by the "
                "root of a sum of squared gradients that only grows.",
                figures.png(surface_figures.step_length_figure(surface, runs))),
    ]
    if gif and surface_figures.pillow_available():
        pictures.append(Picture(f"{name}_paths_animated", f"{name}: paths, animated",
                                "The paths growing step by step: the dots are the current "
                                "positions, the counter the step.",
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
        lead.append("Interrupted (Ctrl-C): this report shows the runs done.")
    facts = [("optimizers", ", ".join(first.labels)), *environment_facts(first.threads)]
    page = Page("optimlab trajectories", lead, tables, pictures, facts,
                files=["metrics.csv", "summary.json"])
    return write_page(folder, page)
