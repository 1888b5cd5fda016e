"""Trajectories: every path visible — the window grows to hold the paths or marks where
one left it, paths are drawn longest first, the GIF is wide enough to read."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image

from optimlab.lab.inputs.specs import parse_spec
from optimlab.lab.rendering.surface_figures import (
    animation_gif,
    by_length,
    exit_point,
    paths_figure,
    window,
)
from optimlab.lab.running.records import FINISHED, Run
from optimlab.lab.running.trajectories import trajectories
from optimlab.lab.workloads.surfaces import SURFACES

RAVINE = SURFACES["ravine"]  # box x in [-10, 3], y in [-2, 2]


def test_the_window_grows_to_hold_a_path_that_leaves_the_box_a_little() -> None:
    (x0, x1), (y0, y1) = window(RAVINE, [([-9.0, -11.0, 0.0], [1.5, 2.5, 0.0])])
    assert x0 < -11 and y1 > 2.5 and (x1, y0) == (3.0, -2.0)


def test_the_window_grows_by_at_most_the_box_and_marks_where_a_path_left() -> None:
    xs, ys = [-9.0, -9.0, 500.0], [1.5, 1.0, 1.0]
    box = window(RAVINE, [(xs, ys)])
    assert box[0] == (-10.0, 3.0 + 13.0)  # grown by the box's width, no more
    step, x, y = exit_point(xs, ys, box)
    assert (step, x, y) == (2, pytest.approx(16.0), pytest.approx(1.0))
    assert exit_point([0.0, 1.0], [0.0, 1.0], box) is None


def path_run(label: str, xs: list[float], ys: list[float]) -> Run:
    run = Run("ravine", label, 0, status=FINISHED, steps_done=len(xs) - 1)
    for step, (x, y) in enumerate(zip(xs, ys, strict=True)):
        run.add(step, 0.0, {"x": x, "y": y, "train_loss": RAVINE(x, y)})
    return run


def test_the_longest_path_is_drawn_first_and_a_path_that_left_is_labelled() -> None:
    runs = {"short": path_run("short", [-9, -8], [1.5, 1.0]),
            "far": path_run("far", [-9, 0, 900], [1.5, 0, 0])}
    assert by_length({label: ([r.records[i].value for i in range(0, len(r.records), 3)],
                              [r.records[i].value for i in range(1, len(r.records), 3)])
                      for label, r in runs.items()}) == ["far", "short"]
    figure = paths_figure(RAVINE, runs, steps=2)
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert "far (left the window at step 2)" in labels and "short" in labels
    assert "where a path left the window" in labels


def test_the_gif_is_wide_with_a_step_counter_frame_by_frame() -> None:
    done = trajectories([parse_spec("sgd"), parse_spec("adam")], ["ravine"], steps=12,
                        progress=False)
    runs = {run.optimizer: run for run in done.surfaces["ravine"].runs}
    image = Image.open(io.BytesIO(animation_gif(RAVINE, runs)))
    assert image.size[0] >= 800 and image.n_frames > 10


def test_adams_first_step_on_the_surfaces_is_lr_times_root_two() -> None:
    """The caption's claim: every coordinate moves by lr at the first step."""
    done = trajectories([parse_spec("adam:lr=0.3")], ["ravine"], steps=1, progress=False)
    (run,) = done.surfaces["ravine"].runs
    xs, ys = run.series("x")[2], run.series("y")[2]
    assert math.hypot(xs[1] - xs[0], ys[1] - ys[0]) == pytest.approx(0.3 * math.sqrt(2),
                                                                      rel=1e-5)
