"""What every optimizer class shares: the specs of the common keywords, torch's run
options, and the ranges most hyperparameters take."""

from __future__ import annotations

from optimlab.hyperparameters import FLAG, OPTIONAL_FLAG, STATE_DTYPES, Choice, Range
from optimlab.rules import WEIGHT_DECAY_FORMS

NONNEGATIVE = Range(0.0)
UNIT = Range(0.0, 1.0)  # [0, 1)

COMMON_SPECS = {
    "lr": NONNEGATIVE,
    "weight_decay": NONNEGATIVE,
    "weight_decay_form": Choice(WEIGHT_DECAY_FORMS),
    "maximize": FLAG,
    "foreach": OPTIONAL_FLAG,
    "fused": OPTIONAL_FLAG,
    "differentiable": FLAG,
    "state_dtype": STATE_DTYPES,
}
TORCH_RUN_OPTIONS = {"foreach": None, "fused": None, "differentiable": False,
                     "state_dtype": None, "maximize": False, "weight_decay_form": "l2"}
