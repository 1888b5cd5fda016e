"""The Python API does what the CLI does, and refuses what it cannot do with a message that
names the argument, its value and what is valid."""

from __future__ import annotations

import pytest
import torch

import optimlab
from optimlab.lab import compare
from optimlab.lab.inputs.specs import SpecError, as_spec


def blobs(gen: torch.Generator, count: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    targets = torch.randint(0, 3, (count,), generator=gen)
    return torch.eye(3)[targets] * 2 + 0.5 * torch.randn(count, 3, generator=gen), targets


@pytest.mark.parametrize(("options", "message"), [
    ({"steps": 0}, "steps=0 is invalid; valid: an integer >= 1"),
    ({"seeds": 0}, "seeds=0 is invalid; valid: a number of seeds >= 1"),
    ({"epochs": 0}, "epochs=0 is invalid; valid: a number > 0"),
    ({"batch_size": 0}, "batch_size=0 is invalid; valid: an integer >= 1"),
    ({"optimizers": ["adamw:warmup=500"], "steps": 100},
     "optimizer spec 'adamw:warmup=500': warmup=500 is invalid"),
])
def test_bad_settings_are_refused_before_training(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare("ravine", **{"optimizers": ["sgd"], **options})


def test_a_model_instance_is_refused_saying_what_model_must_be(gen) -> None:
    with pytest.raises(TypeError, match=r"model= is a Linear instance; valid: a function "
                                        r"that builds a fresh model .*lambda"):
        compare("mine", ["sgd"], model=torch.nn.Linear(3, 3), data=blobs(gen))
    with pytest.raises(TypeError, match="model=3 is not callable"):
        compare("mine", ["sgd"], model=3, data=blobs(gen))
    with pytest.raises(TypeError, match=r"model\(\) returned Tensor; valid: a function that "
                                        r"returns a torch.nn.Module"):
        compare("mine", ["sgd"], model=lambda: torch.zeros(3), data=blobs(gen), steps=1,
                seeds=1, progress=False)


def test_optimizer_classes_are_specs_too(gen) -> None:
    assert as_spec(optimlab.AdamW).label == "adamw"
    results = compare("mine", [torch.optim.Adam, optimlab.SGD],
                      model=lambda: torch.nn.Linear(3, 3), data=blobs(gen), steps=20, seeds=1,
                      batch_size=16, progress=False)
    adam, sgd = results.runs
    assert (adam.optimizer, sgd.optimizer) == ("torch.optim.Adam", "sgd")
    assert adam.lr == 1e-3  # the generic lr of its namesake, adam
    assert adam.engine == "torch.optim" and adam.last("heldout_accuracy") is None
    losses = adam.series("train_set_loss")[2]  # on the whole training set
    assert losses[-1] < losses[0]  # torch's Adam trained


def test_what_is_not_an_optimizer_is_refused_naming_it() -> None:
    parameter = torch.nn.Parameter(torch.ones(1))
    with pytest.raises(SpecError, match=r"is not an optimizer spec; valid: a text such as "
                                        r"'adam:lr=3e-4', an OptimizerSpec, or a "
                                        r"torch.optim.Optimizer subclass \(the class, not an "
                                        r"instance\)"):
        as_spec(torch.optim.Adam([parameter]))
    with pytest.raises(SpecError, match=r"torch\.optim\.LBFGS takes no weight_decay"):
        as_spec(torch.optim.LBFGS)


def test_a_metric_is_named_by_metric_name_or_its_function(gen) -> None:
    def balanced(outputs: torch.Tensor, targets: torch.Tensor) -> float:
        return (outputs.argmax(1) == targets).float().mean().item()

    data = {"model": lambda: torch.nn.Linear(3, 3), "data": blobs(gen), "heldout": blobs(gen),
            "steps": 2, "seeds": 1, "progress": False}
    cases = [({"metric": lambda o, t: 1.0}, "held-out metric"),
             ({"metric": lambda o, t: 1.0, "metric_name": "F1"}, "held-out F1"),
             ({"metric": balanced}, "held-out balanced")]
    for options, label in cases:
        results = compare("mine", ["sgd"], **data, **options)
        assert results.task.headline.label == label
