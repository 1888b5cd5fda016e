"""Update rules: what every rule shares, and ``Rule``, the declaration engines read.

A rule takes a parameter θ, its gradient g, the parameter's state tensors (named as
torch.optim names them) and the hyperparameters of this step, and returns the new θ and
the new state. It modifies nothing and reads nothing else, so the same function runs
eagerly over one tensor, over a flat buffer, or compiled into a fused kernel
(see engines.py). There is no second copy of any algorithm.

``hp`` maps names to values of the two kinds each rule declares (``Rule`` below):

* numbers (lr, betas, eps, ...; Python floats, or 0-d tensors where the engine passes
  them as tensors: compiled code, so that a schedule never recompiles; autograd, for
  ``differentiable=True``), including the per-step numbers that ``Rule.step_scalars``
  derives once per step (bias corrections, decayed lr);
* options (bools and strings) that select a variant of the equation.

Every rule starts with the two transformations all optimizers share, ``direction`` (the
``maximize`` sign) and ``weight_decay`` (L2 in the gradient, or decoupled from it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

State = dict[str, Tensor]
Hyper = Mapping[str, Any]
#: (hp, t, the 0-d state values before the step) -> (numbers for this step, new values)
ScalarStep = Callable[[Mapping[str, Any], Any, Mapping[str, Tensor]],
                      tuple[dict[str, Any], dict[str, Tensor]]]

WEIGHT_DECAY_FORMS = ("l2", "decoupled", "independent")
EPS_PLACEMENTS = ("outside", "inside")
ADAM_EPS_PLACEMENTS = (*EPS_PLACEMENTS, "hat")
MOMENTUM_FORMS = ("heavy_ball", "ema")


def direction(grad: Tensor, hp: Hyper) -> Tensor:
    """g ← −g when maximizing (ascend the objective instead of descending it)."""
    return -grad if hp["maximize"] else grad


def weight_decay(param: Tensor, grad: Tensor, hp: Hyper) -> tuple[Tensor, Tensor]:
    """Apply weight decay λ in one of three forms; returns (θ, g).

    * ``"l2"``:          g ← g + λθ         (torch's ``weight_decay`` for SGD/Adagrad/RMSprop/Adam;
                                            the seeds' "broken" Adam weight decay)
    * ``"decoupled"``:   θ ← θ·(1 − ηλ)     (AdamW, Loshchilov & Hutter; torch.optim.AdamW)
    * ``"independent"``: θ ← θ·(1 − λ)      (decoupled and independent of the learning rate η,
                                            so an lr schedule does not change the decay)
    """
    form, lam = hp["weight_decay_form"], hp["weight_decay"]
    if form == "l2":
        return param, grad + lam * param
    if form == "decoupled":
        return param * (1 - hp["lr"] * lam), grad
    return param * (1 - lam), grad


def _root(x: Tensor, hp: Hyper) -> Tensor:
    """√x + ε (``eps_placement="outside"``, torch) or √(x + ε) (``"inside"``, TensorFlow)."""
    if hp["eps_placement"] == "inside":
        return torch.sqrt(x + hp["eps"])
    return torch.sqrt(x) + hp["eps"]


def no_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    return {}


# --- the rules as the engines see them ----------------------------------------------------


COMMON_NUMBERS = ("lr", "weight_decay")
ELEMENTWISE, PER_TENSOR, MATRIX, GLOBAL = "elementwise", "per-tensor", "matrix", "global"
STRUCTURES = (ELEMENTWISE, PER_TENSOR, MATRIX, GLOBAL)
COMMON_OPTIONS = ("maximize", "weight_decay_form")


@dataclass(frozen=True)
class Rule:
    """An algorithm as the engines run it, and what it reads from a param group.

    The declaration is the single source of what a configuration is:

    * ``numbers``: the real-valued hyperparameters ``update`` reads (lr, betas, eps, ...),
      by their names in ``hp``; ``pairs`` names the group keys that hold two of them
      (Adam's ``betas`` -> ``beta1``, ``beta2``). Numbers may change every step (a
      schedule) and reach compiled code as values, never as part of a cache key.
    * ``options``: the bools and choices that select a variant of the equation. Together
      with ``state_keys`` they key every cache and kernel (views.py).
    * ``step_numbers``: what ``step_scalars`` derives once per step from the numbers and
      the step t (bias corrections, decayed lr, torch's first-step dampening).
    * ``state_keys(hp)``: the moments a configuration keeps, which may depend on numbers
      (``momentum != 0`` adds a buffer).

    ``counts_steps`` says whether the state keeps torch's ``step`` counter;
    ``accepts_sparse`` whether sparse gradients are taken (as torch takes them);
    ``row_local`` says, for a group, whether a zero gradient leaves θ and the state
    unchanged, so that a sparse gradient need only update the rows it touches;
    ``initial_values`` gives state tensors that do not start at zero.

    What an element's update reads, which every engine checks before it takes a group
    (``structure``; engines decline what they cannot run, and ``auto`` falls through):

    * ``ELEMENTWISE``: only that element (of θ, g and the state): a group's tensors may
      be joined end to end, stored in 8-bit blocks, run by one flat C loop;
    * ``PER_TENSOR``: reductions over its own tensor too (norms, RMS, row and column
      means: LAMB's trust ratio, Adafactor's factored moments);
    * ``MATRIX``: matmuls on the tensor as a matrix (Muon's Newton–Schulz iteration);
    * ``GLOBAL``: a reduction over every gradient of the optimizer as well, computed once
      per step before any update by ``global_scalars(defaults, grads)`` and read by
      ``update`` as numbers (LAMB's clip of the global gradient norm).

    ``state_shapes(hp, shape)`` gives, for a param of ``shape``, the shape of each state
    key it keeps (a key left out is not kept for that param; like the param when None:
    Adafactor keeps ``row_var`` (…, R, 1) and ``col_var`` (…, 1, C) for a matrix and
    ``variance`` for a vector). ``group_values`` names numbers the rule keeps across
    steps per param group (schedule-free's step count, weight sum and largest lr): they
    live in the group, so checkpoints carry them. ``group_step(hp, kept)`` is called once
    per group and step, before any update, with the group's options and numbers and its
    kept values as they stand; it returns their new values and any per-step numbers
    derived from them (schedule-free's c_{t+1}). Everything it returns joins the numbers
    ``update`` reads (name the derived ones in ``step_numbers``, so that compiled and
    generated kernels take them as per-step scalars); the kept values are written back
    into the group only once the step has succeeded. ``copies_param`` names state keys
    that start as a copy of the param rather than at a constant (schedule-free's z).

    ``scalar_state`` names 0-d tensors that torch.optim keeps in each parameter's state
    beside ``step`` and that its math reads (NAdam's ``mu_product``, ASGD's ``eta`` and
    ``mu``): they live in the state under torch's names, so checkpoints load both ways,
    and start at ``scalar_initial(hp)``. Once per step, before any update,
    ``scalar_step(hp, t, kept)`` takes their stored values and returns the numbers this
    step reads (merged into the hp, as ``step_scalars`` then sees them) and their new
    values, written into the state after the update. The update itself stays
    elementwise: every engine runs it, with these as per-step numbers.
    ``tensor_scalars(hp, param)`` derives numbers from the param as it is stored, before
    the engine hands the rule a copy in its math dtype (Adafactor's ε₁ = the machine
    epsilon of the param's own dtype, as torch takes it); a rule that declares it is not
    elementwise.
    """

    name: str
    update: Callable[[Tensor, Tensor, State, Hyper], tuple[Tensor, State]]
    numbers: tuple[str, ...]
    options: tuple[str, ...]
    step_scalars: Callable[[Hyper, Any], dict[str, Any]]
    step_numbers: tuple[str, ...]
    state_keys: Callable[[Hyper], tuple[str, ...]]
    pairs: tuple[tuple[str, tuple[str, str]], ...] = ()
    counts_steps: bool = True
    accepts_sparse: bool = False
    row_local: Callable[[Hyper], bool] = lambda hp: False
    initial_values: Callable[[Hyper], dict[str, float]] = lambda hp: {}
    structure: str = "elementwise"
    state_shapes: Callable[[Hyper, torch.Size], dict[str, tuple[int, ...]]] | None = None
    global_scalars: Callable[[Hyper, Sequence[Tensor]], dict[str, Any]] | None = None
    group_values: tuple[str, ...] = ()
    group_step: Callable[[Hyper, Mapping[str, Any]], dict[str, Any]] | None = None
    copies_param: tuple[str, ...] = ()
    scalar_state: tuple[str, ...] = ()
    scalar_initial: Callable[[Hyper], dict[str, float]] = lambda hp: {}
    scalar_step: ScalarStep | None = None
    tensor_scalars: Callable[[Hyper, Tensor], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise ValueError(f"Rule {self.name!r}: structure={self.structure!r}; valid: one "
                             f"of {STRUCTURES}")
        if bool(self.scalar_state) != (self.scalar_step is not None):
            raise ValueError(f"Rule {self.name!r}: a rule that keeps scalar_state, and only "
                             "one, declares scalar_step")
        if (self.structure == GLOBAL) != (self.global_scalars is not None):
            raise ValueError(f"Rule {self.name!r}: a GLOBAL rule, and only one, declares "
                             "global_scalars")
        if bool(self.group_values) != (self.group_step is not None):
            raise ValueError(f"Rule {self.name!r}: a rule that keeps group_values, and only "
                             "one, declares group_step")

    @property
    def elementwise(self) -> bool:
        """Whether an element's update reads only that element (see ``structure``)."""
        return (self.structure == ELEMENTWISE and self.state_shapes is None
                and self.tensor_scalars is None)

    def shapes(self, hp: Hyper, keys: Sequence[str], shape: torch.Size
               ) -> dict[str, tuple[int, ...]]:
        """The state keys among ``keys`` that a param of ``shape`` keeps, with their
        shapes."""
        if self.state_shapes is None:
            return {key: tuple(shape) for key in keys}
        declared = self.state_shapes(hp, shape)
        return {key: tuple(declared[key]) for key in keys if key in declared}

    def group_keys(self) -> tuple[str, ...]:
        """The param-group keys the rule reads (``betas`` rather than beta1, beta2)."""
        paired = {name for _, pair in self.pairs for name in pair}
        return (*(n for n in self.numbers if n not in paired), *(k for k, _ in self.pairs),
                *self.options)


