"""The benchmark's tables and report.html (self-contained, like compare's), summary.json,
trials.csv and the figures' PNGs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from optimlab.lab.analysis import profiles
from optimlab.lab.analysis.benchmark_results import BenchmarkResults
from optimlab.lab.analysis.tables import Table, number, plural, studies_text
from optimlab.lab.analysis.verdicts import TEST
from optimlab.lab.rendering import benchmark_figures as drawn
from optimlab.lab.rendering.figures import png
from optimlab.lab.rendering.pages import tied_text
from optimlab.lab.rendering.report import Page, Picture, environment_facts, write_json, write_page
from optimlab.lab.running.benchmark import space_of
from optimlab.lab.workloads.tasks import get_task


def time_text(value: float, by: str) -> str:
    if not math.isfinite(value):
        return "✕"
    return f"{value:.0f}" if by == "steps" else number(value, 2)


def score_table(done: BenchmarkResults) -> Table:
    """One row per optimizer: its scores (tuned by steps and by seconds; one-shot by
    steps), and on how many tasks its median study reached the target."""
    standings = done.standings
    steps, seconds = standings.scores("steps"), standings.scores("seconds")
    once = standings.scores("steps", "one-shot")
    times = standings.times("steps")
    table = Table(f"Score: the mean of the performance profile ρ(τ) over τ ∈ [1, "
                  f"{profiles.TAU_MAX:g}] (1: the fastest on every task; 0: never within "
                  f"{profiles.TAU_MAX:g}x of the fastest). Tuned: the median over "
                  f"{studies_text(done.setup.studies)} of each study's fastest of "
                  f"{plural(done.setup.trials, 'trial')}; one-shot: the registry's defaults.",
                  ["optimizer", "score (steps)", "score (seconds)", "one-shot score (steps)",
                   "tasks reached"], title="Scores")
    order = sorted(standings.optimizers, key=lambda opt: (-steps[opt], -seconds[opt]))
    for opt in order:
        reached = sum(math.isfinite(v) for v in times[opt].values())
        table.add([opt, f"{steps[opt]:.3f}", f"{seconds[opt]:.3f}", f"{once[opt]:.3f}",
                   f"{reached}/{len(standings.tasks)}"])
    return table


def task_table(done: BenchmarkResults, by: str) -> Table:
    """Per optimizer and task: the median over studies of the best trial's steps (or
    seconds) to the target, with the studies' range; ✕ a miss; one-shot after '|'."""
    standings, cells = done.standings, done.standings.cells
    table = Table(f"Median over studies of the fastest trial's {drawn.MEASURE_LABEL[by]} "
                  "[lowest–highest study]; ✕: the median study missed it; after '|': the "
                  "one-shot runs' median.", ["optimizer", *standings.tasks],
                  title=f"Time to target ({by})")
    for opt in standings.optimizers:
        row = [opt]
        for task in standings.tasks:
            cell = cells[task, opt]
            value = cell.steps if by == "steps" else cell.seconds
            once = cell.one_shot_steps if by == "steps" else cell.one_shot_seconds
            low, high = cell.spread(by)
            spread = (f" [{time_text(low, by)}–{time_text(high, by)}]"
                      if low != high else "")
            row.append(f"{time_text(value, by)}{spread} | {time_text(once, by)}")
        table.add(row)
    return table


def target_facts(done: BenchmarkResults) -> list[str]:
    """Each task's target and how it was set."""
    lines = []
    for name in done.standings.tasks:
        task = get_task(name)
        metric = task.headline
        lines.append(f"{name}: {metric.label} {'≥' if metric.higher_is_better else '≤'} "
                     f"{number(metric.target)} ({task.target_note})")
    return lines


def lead(done: BenchmarkResults) -> list[str]:
    """The opening lines: what ran, who leads, who wins each task beyond noise."""
    setup, standings = done.setup, done.standings
    scores = standings.scores("steps")
    top = max(scores.values()) if scores else 0.0
    leaders = [opt for opt, value in scores.items() if value == top]
    lines = [f"{plural(len(setup.specs), 'optimizer')} × {plural(len(setup.tasks), 'task')} "
             f"× {studies_text(setup.studies)} × {plural(setup.trials, 'tuned trial')} "
             f"(+ one one-shot run per study): {done.complete} of {done.budget} trials "
             f"finished; this run did {done.ran} in {done.seconds:.0f} s with "
             f"{plural(done.workers, 'worker')}.",
             f"Highest score by steps: {', '.join(leaders)} ({top:.3f})."]
    for task, verdict in standings.verdicts().items():
        if verdict.winner:
            lines.append(f"{task}: {verdict.winner} reaches the target in the fewest steps, "
                         f"beyond the studies' noise ({TEST}).")
        elif verdict.best and len(verdict.tied) == 1:
            lines.append(f"{task}: {verdict.best} alone reached the target in every study.")
        elif verdict.best:
            reason = verdict.reason.replace("seeds'", "studies'").replace(
                "one seed per optimizer", "one study per optimizer")
            lines.append(f"{task}: {tied_text(verdict.tied)} — no winner in steps to the "
                         f"target ({reason}).")
        else:
            lines.append(f"{task}: no optimizer reached the target in every study.")
    if done.unavailable:
        lines += [f"Left out: {name}: {why}." for name, why in done.unavailable.items()]
    if done.complete < done.budget:
        lines.append(f"Incomplete: {done.budget - done.complete} trials not finished; run "
                     "the same command again to finish them.")
    return lines


def pictures(done: BenchmarkResults) -> list[Picture]:
    standings = done.standings
    labels = {name: get_task(name).headline.label for name in standings.tasks}
    shown = [Picture("profiles", "Performance profiles",
                     "ρ(τ): the share of tasks on which the optimizer's median time to the "
                     "target is within a factor τ of the fastest optimizer's; by steps "
                     "(left) and training seconds (right). Higher and further left is "
                     "better; the legend gives each score.",
                     png(drawn.profiles_figure(standings))),
             Picture("one-shot", "One-shot against tuned",
                     "What tuning bought: the final metric with the registry's defaults "
                     "against the best tuned trial's.",
                     png(drawn.one_shot_figure(standings, labels)))]
    bounds = {spec.label: {dim.key: (dim.low, dim.high)
                           for dim in space_of(spec, done.setup.tune)}
              for spec in done.setup.specs}
    for name in standings.tasks:
        metric = get_task(name).headline
        shown.append(Picture(
            f"landscape-{name}", f"Landscape: {name}",
            "Every trial at its learning rate and weight decay, coloured by its final "
            f"{metric.label}.",
            png(drawn.landscape_figure(standings, name, metric.higher_is_better,
                                       metric.label, metric.target, bounds))))
    return shown


def write_trials_csv(path: Path, done: BenchmarkResults) -> None:
    """trials.csv: one row per finished trial, its point and its measurements."""
    records = done.standings.records
    params = sorted({key for record in records for key in record.params})
    measures = ["status", "steps_to_target", "seconds_to_target", "final", "best", "seed",
                "lr", "weight_decay", "train_seconds", "step_seconds"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "optimizer", "kind", "study", "slot", *params, *measures])
        for r in records:
            writer.writerow([r.task, r.optimizer, r.kind, r.study, r.slot,
                             *(r.params.get(key, "") for key in params),
                             *(r.attrs.get(key, "") for key in measures)])


def write_benchmark(done: BenchmarkResults, folder: Path) -> Path:
    """The run folder of ``optimlab benchmark``."""
    setup = done.setup
    write_trials_csv(folder / "trials.csv", done)
    write_json(folder / "summary.json", {
        "tasks": list(setup.tasks), "optimizers": [s.label for s in setup.specs],
        "trials": setup.trials, "studies": setup.studies, "storage": setup.storage,
        "tune": setup.tune, "budget": done.budget, "complete": done.complete,
        "unavailable": done.unavailable, "targets": target_facts(done),
        "seconds": done.seconds, "workers": done.workers, **done.standings.to_json()})
    facts = [("tasks", ", ".join(setup.tasks)),
             ("optimizers", ", ".join(s.label for s in setup.specs)),
             ("budget", f"{setup.trials} tuned trials per optimizer, task and study; "
                        f"{setup.studies} studies; one one-shot run per study"),
             ("search space", "optimlab.registry (Entry.search_space), scrambled Sobol "
                              "points (optuna's QMCSampler) seeded by the study"),
             ("tuned keys", ", ".join(setup.tune) if setup.tune else "all of each space"),
             ("storage", setup.storage), ("workers", str(done.workers)),
             *(("target", line) for line in target_facts(done)),
             *environment_facts(1)]
    page = Page("optimlab benchmark", lead(done),
                [score_table(done), task_table(done, "steps"), task_table(done, "seconds")],
                pictures(done), facts, files=["summary.json", "trials.csv"])
    return write_page(folder, page)
