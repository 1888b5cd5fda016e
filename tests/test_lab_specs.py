"""Optimizer specs: every option of every core optimizer is reachable from text, and bad
text is refused with a message that names the bad part and lists what is valid."""

from __future__ import annotations

import pytest
import torch
from cases import taken_shape

from optimlab.hyperparameters import Choice, Numbers, Optional_, Pair, Range
from optimlab.lab.inputs.specs import (
    KEYWORD_CHOICES,
    NAMED,
    SpecError,
    parse_spec,
    valid_keys,
    value_text,
)

CLASSES = {named.cls: name for name, named in NAMED.items() if not named.overrides}


def candidate_texts(cls: type, key: str) -> list[str]:
    """Texts for ``key`` derived from the class's own declarations, never a fixed list."""
    spec = cls.specs.get(key)
    if isinstance(spec, Optional_):
        return ["none", f"{spec.spec.low + 0.25 * min(1.0, spec.spec.high - spec.spec.low):g}"]
    if isinstance(spec, Range):
        return [f"{spec.low + 0.25 * min(1.0, spec.high - spec.low):g}"]
    if isinstance(spec, Pair):
        return ["0.5/0.75"]
    if isinstance(spec, Numbers):
        return ["/".join(["0.5"] * spec.count)]
    if isinstance(spec, Choice):
        return [value_text(value) for value in spec.values]
    if key in KEYWORD_CHOICES:
        return list(KEYWORD_CHOICES[key](cls))
    return [value_text(valid_keys(cls)[key].default)]


def landed(optimizer: torch.optim.Optimizer, key: str) -> object:
    """Where a keyword ends up: the param group, or the optimizer itself."""
    group = optimizer.param_groups[0]
    return group[key] if key in group else getattr(optimizer, key)


@pytest.mark.parametrize("cls", list(CLASSES), ids=lambda cls: cls.__name__)
def test_every_option_of_every_class_is_reachable(cls: type) -> None:
    name = "momentum" if cls.__name__ == "SGD" else CLASSES[cls]  # nesterov needs momentum
    for key in valid_keys(cls):
        for text in candidate_texts(cls, key):
            try:
                spec = parse_spec(f"{name}:{key}={text}")
            except SpecError as error:  # the class itself refuses (e.g. differentiable)
                assert key in str(error)
                continue
            built = spec.build([torch.nn.Parameter(torch.full(taken_shape(cls, (3,)), 0.7))])
            got = landed(built, key)
            assert value_text(got) == text or got == spec.overrides[key], (key, text, got)


def test_named_specs_and_overrides_convert_by_the_class_specs() -> None:
    spec = parse_spec("adam:lr=3e-4,bias_correction=false,betas=0.9/0.95,eps_placement=inside,"
                      "state_dtype=float64,eps_root=1e-12")
    assert spec.overrides == {"lr": 3e-4, "bias_correction": False, "betas": (0.9, 0.95),
                              "eps_placement": "inside", "state_dtype": torch.float64,
                              "eps_root": 1e-12}
    momentum = parse_spec("momentum")
    assert momentum.cls.__name__ == "SGD" and momentum.keywords()["momentum"] == 0.9
    nesterov = parse_spec("sgd:momentum=0.9,nesterov=yes,momentum_form=ema")
    group = nesterov.build([torch.nn.Parameter(torch.ones(2))]).param_groups[0]
    assert group["nesterov"] is True and group["momentum_form"] == "ema"


def test_a_label_parses_back_to_the_same_spec() -> None:
    for text in ["sgd", "adamw:betas=0.9/0.95,weight_decay_form=independent,weight_decay=0.1",
                 "adam:lr=0.000123456789,eps=1e-7",
                 "rmsprop:eps_placement=inside,centered=true", "adam:engine=reference"]:
        spec = parse_spec(text)
        assert parse_spec(spec.label) == spec


def test_the_task_lr_applies_unless_the_spec_sets_one() -> None:
    assert parse_spec("adam").keywords(default_lr=0.02)["lr"] == 0.02
    assert parse_spec("adam:lr=0.5").keywords(default_lr=0.02)["lr"] == 0.5


@pytest.mark.parametrize(("text", "expected"), [
    ("adamm", ["unknown optimizer 'adamm'", "did you mean 'adam'", "sgd, momentum"]),
    ("adam:bias_corection=false", ["'bias_corection'", "did you mean 'bias_correction'",
                                   "valid options: lr, betas"]),
    ("adam:lr=fast", ["lr='fast' is not a number", "lr >= 0"]),
    ("adam:lr=-1", ["lr=-1.0 is invalid", "lr >= 0"]),
    ("adam:betas=0.9", ["betas='0.9' is not a pair", "a/b"]),
    ("adam:betas=0.9/1.5", ["betas[1]=1.5 is invalid", "betas[1] < 1"]),
    ("rmsprop:eps_placement=middle", ["eps_placement='middle'", "outside, inside"]),
    ("adam:bias_correction=maybe", ["bias_correction='maybe'", "false, true"]),
    ("sgd:nesterov=true", ["'sgd:nesterov=true'", "nesterov=True", "momentum"]),
    ("adam:engine=warp", ["engine='warp' is invalid", "reference"]),
    ("adam:lr", ["'lr' is not key=value"]),
    ("adam:lr=1e-3,lr=3e-3", ["lr is given twice"]),
])
def test_bad_specs_are_refused_naming_the_bad_part(text: str, expected: list[str]) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(text)
    for part in expected:
        assert part in str(caught.value)
