"""The runner evaluates an optimizer that has ``eval()``/``train()`` (schedule-free's) in
its eval mode, and trains it in its train mode; optimizers without them are untouched."""

from __future__ import annotations

import optimlab
from optimlab.lab.inputs.specs import spec_of_class
from optimlab.lab.running import runner
from optimlab.lab.running.runner import Settings, run_all
from optimlab.lab.workloads.tasks import get_task


class ModalSGD(optimlab.SGD):
    """SGD that keeps a mode, as schedule-free optimizers do, and logs each switch and
    each step in the mode it ran in."""

    log: list[str] = []

    def __init__(self, params, lr=0.1, momentum=0.0, weight_decay=0.0) -> None:
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.mode = "train"

    def eval(self) -> None:
        self.mode = "eval"
        ModalSGD.log.append("eval")

    def train(self) -> None:
        self.mode = "train"
        ModalSGD.log.append("train")

    def step(self, closure=None):
        ModalSGD.log.append(f"step in {self.mode}")
        return super().step(closure)


def test_evaluations_run_in_eval_mode_and_steps_in_train_mode(monkeypatch) -> None:
    ModalSGD.log = []
    real_scores = runner.scores

    def scores(problem):
        ModalSGD.log.append("scores")
        return real_scores(problem)

    monkeypatch.setattr(runner, "scores", scores)
    settings = Settings(steps=6, batch_size=16, seeds=(0,), untimed_steps=0, eval_points=3)
    results = run_all(get_task("digits-mlp"), [spec_of_class(ModalSGD, lr=0.1)], settings,
                      progress=False)
    (run,) = results.runs
    assert run.status == "finished"
    log = ModalSGD.log
    # step 0, then every 2 steps: each evaluation between eval() and train()
    assert log.count("scores") == 4
    for index, entry in enumerate(log):
        if entry == "scores":
            assert log[index - 1] == "eval" and log[index + 1] == "train"
    assert log.count("step in train") == 6 and "step in eval" not in log


def test_optimizers_without_modes_are_evaluated_as_they_are() -> None:
    settings = Settings(steps=4, batch_size=16, seeds=(0,), untimed_steps=0, eval_points=2)
    results = run_all(get_task("digits-mlp"), [spec_of_class(optimlab.SGD, lr=0.1)],
                      settings, progress=False)
    assert results.runs[0].status == "finished"
