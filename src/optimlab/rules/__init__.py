"""Update rules: one pure function per algorithm, written as its equation, and its
declaration (``Rule``) that every engine reads.

A rule takes a parameter θ, its gradient g, the parameter's state tensors (named as
torch.optim names them) and the hyperparameters of this step, and returns the new θ and
the new state. It modifies nothing and reads nothing else, so the same function runs
eagerly over one tensor, over a flat buffer, or compiled into a fused kernel
(see engines.py). There is no second copy of any algorithm.

``hp`` maps names to values of the two kinds each rule declares (``Rule``):

* numbers (lr, betas, eps, ...; Python floats, or 0-d tensors where the engine passes
  them as tensors: compiled code, so that a schedule never recompiles; autograd, for
  ``differentiable=True``), including the per-step numbers that ``Rule.step_scalars``
  derives once per step (bias corrections, decayed lr);
* options (bools and strings) that select a variant of the equation.

Every rule starts with the two transformations all optimizers share, ``direction`` (the
``maximize`` sign) and ``weight_decay`` (L2 in the gradient, or decoupled from it).
``base.py`` holds what rules share; each family has a module of its own (``classic.py``:
the seeds' four; ``nadam.py``, ``radam.py``, ``adamax.py``, ``adadelta.py``, ``rprop.py``,
``asgd.py``: the rest of torch.optim's catalog; ``adafactor.py``: per-tensor, factored;
``muon.py``: matrix; ``lion.py``, ``lamb.py``,
``schedulefree.py``, ...), which defines its function and its ``Rule``; a class imports its
rule from its module.
"""

from optimlab.rules.adadelta import (
    ADADELTA_RULE,
    adadelta,
)
from optimlab.rules.adafactor import (
    ADAFACTOR_RULE,
    adafactor,
    adafactor_scalars,
)
from optimlab.rules.adamax import (
    ADAMAX_EPS_PLACEMENTS,
    ADAMAX_RULE,
    adamax,
    adamax_scalars,
)
from optimlab.rules.asgd import (
    ASGD_RULE,
    asgd,
    asgd_scalar_step,
    asgd_scalars,
)
from optimlab.rules.base import (
    ADAM_EPS_PLACEMENTS,
    COMMON_NUMBERS,
    COMMON_OPTIONS,
    ELEMENTWISE,
    EPS_PLACEMENTS,
    GLOBAL,
    MATRIX,
    MOMENTUM_FORMS,
    PER_TENSOR,
    STRUCTURES,
    WEIGHT_DECAY_FORMS,
    Hyper,
    Rule,
    State,
    direction,
    no_scalars,
    weight_decay,
)
from optimlab.rules.classic import (
    ADAGRAD_RULE,
    ADAM_RULE,
    RMSPROP_RULE,
    SGD_RULE,
    _centered_variance,
    adagrad,
    adagrad_scalars,
    adam,
    adam_scalars,
    rmsprop,
    sgd,
    sgd_scalars,
)
from optimlab.rules.muon import (
    MUON_RULE,
    muon,
    newton_schulz,
)
from optimlab.rules.nadam import (
    MOMENTUM_SCHEDULES,
    NADAM_RULE,
    nadam,
    nadam_scalar_step,
    nadam_scalars,
)
from optimlab.rules.radam import (
    RADAM_EPS_PLACEMENTS,
    RADAM_RULE,
    radam,
    radam_scalars,
)
from optimlab.rules.rprop import (
    RPROP_RULE,
    rprop,
)
from optimlab.rules.schedulefree import (
    ADAMW_SCHEDULEFREE_RULE,
    SGD_SCHEDULEFREE_RULE,
    adamw_schedulefree,
    schedulefree_group_step,
    sgd_schedulefree,
)

__all__ = [
    "ADADELTA_RULE",
    "ADAFACTOR_RULE",
    "ADAGRAD_RULE",
    "ADAMAX_EPS_PLACEMENTS",
    "ADAMAX_RULE",
    "ADAMW_SCHEDULEFREE_RULE",
    "ADAM_EPS_PLACEMENTS",
    "ADAM_RULE",
    "ASGD_RULE",
    "COMMON_NUMBERS",
    "COMMON_OPTIONS",
    "ELEMENTWISE",
    "EPS_PLACEMENTS",
    "GLOBAL",
    "MATRIX",
    "MOMENTUM_FORMS",
    "MOMENTUM_SCHEDULES",
    "MUON_RULE",
    "NADAM_RULE",
    "PER_TENSOR",
    "RADAM_EPS_PLACEMENTS",
    "RADAM_RULE",
    "RMSPROP_RULE",
    "RPROP_RULE",
    "SGD_RULE",
    "SGD_SCHEDULEFREE_RULE",
    "STRUCTURES",
    "WEIGHT_DECAY_FORMS",
    "Hyper",
    "Rule",
    "State",
    "_centered_variance",
    "adadelta",
    "adafactor",
    "adafactor_scalars",
    "adagrad",
    "adagrad_scalars",
    "adam",
    "adam_scalars",
    "adamax",
    "adamax_scalars",
    "adamw_schedulefree",
    "asgd",
    "asgd_scalar_step",
    "asgd_scalars",
    "direction",
    "muon",
    "nadam",
    "nadam_scalar_step",
    "nadam_scalars",
    "newton_schulz",
    "no_scalars",
    "radam",
    "radam_scalars",
    "rmsprop",
    "rprop",
    "schedulefree_group_step",
    "sgd",
    "sgd_scalars",
    "sgd_schedulefree",
    "weight_decay",
]
