"""torch's ``decoupled_weight_decay`` flag beside our ``weight_decay_form``: one base for
the optimizers torch gives the flag (Adam, NAdam, RAdam), so both say the same thing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optimlab.hyperparameters import ArgumentError
from optimlab.optimizer import Optimizer

DECOUPLED = {"weight_decay_form": "decoupled", "decoupled_weight_decay": True}


def decay_keywords(decoupled_weight_decay: bool | None, weight_decay_form: str | None
                   ) -> tuple[bool | None, str | None]:
    """Whichever of torch's flag and our form is given decides the other (over the
    preset); neither given: both from the preset."""
    if decoupled_weight_decay is None and weight_decay_form is not None:
        decoupled_weight_decay = weight_decay_form != "l2"
    elif decoupled_weight_decay is not None and weight_decay_form is None:
        weight_decay_form = "decoupled" if decoupled_weight_decay else "l2"
    return decoupled_weight_decay, weight_decay_form


class DecoupledFlag(Optimizer):
    """An optimizer whose groups hold torch's ``decoupled_weight_decay`` beside
    ``weight_decay_form`` (no rule of its own)."""

    def check_relations(self, owner: str, group: Mapping[str, Any]) -> None:
        if group["decoupled_weight_decay"] and group["weight_decay_form"] == "l2":
            raise ArgumentError(f"{owner}: decoupled_weight_decay=True contradicts "
                                "weight_decay_form='l2'; valid: weight_decay_form "
                                "'decoupled' or 'independent'")

    def normalize_group(self, group: dict[str, Any]) -> None:
        """Keep torch's ``decoupled_weight_decay`` and our ``weight_decay_form`` saying the
        same thing, whichever of them was written since the last step: torch.optim code
        flips the flag (follow it), ours sets the form (the flag follows, so that our
        checkpoints mean the same thing to torch.optim)."""
        flag, form = bool(group["decoupled_weight_decay"]), group["weight_decay_form"]
        seen = self.__dict__.setdefault("_decay_seen", {}).get(id(group))
        if seen is not None and flag != seen[0] and form == seen[1]:
            form = group["weight_decay_form"] = "decoupled" if flag else "l2"
        group["decoupled_weight_decay"] = form != "l2"
        self._decay_seen[id(group)] = (form != "l2", form)

    def complete_group(self, group: dict[str, Any]) -> None:
        """A group may say how to decay in torch's words (decoupled_weight_decay) or ours
        (weight_decay_form); derive the one it lacks from the one it has."""
        has_form, has_flag = "weight_decay_form" in group, "decoupled_weight_decay" in group
        if has_form and not has_flag:
            group["decoupled_weight_decay"] = group["weight_decay_form"] != "l2"
        elif has_flag and not has_form:
            ours = self.defaults["weight_decay_form"]
            if (ours != "l2") != bool(group["decoupled_weight_decay"]):
                ours = "decoupled" if group["decoupled_weight_decay"] else "l2"
            group["weight_decay_form"] = ours
        super().complete_group(group)
