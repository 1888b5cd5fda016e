"""The registry that drives the generic tests: every optimizer under every convention
option, whether torch.optim shares that configuration's conventions, and the storage of
its moments (``state_dtype``) as a second axis."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from explore import EXPLORE

import optimlab
from optimlab import codecs
from optimlab.rules import MATRIX

#: the optimizer classes by name, from the registry (no hand-kept list of them)
CLASSES = {cls.__name__: cls for cls in optimlab.registry.classes()}


def optimizer_class(name: str) -> type[optimlab.Optimizer]:
    """optimlab's class ``name``, as the registry holds it."""
    return CLASSES[name]


def torch_class(name: str) -> type[torch.optim.Optimizer] | None:
    """The torch.optim class with the same equation as optimlab's ``name`` (the registry's
    ``torch_twin``), or None where torch has none."""
    return optimlab.registry.torch_twin(CLASSES[name])


@dataclass(frozen=True)
class Case:
    name: str  # optimlab's class name (its torch twin, if torch_parity, from the registry)
    kwargs: dict[str, Any]
    torch_parity: bool = True  # torch.optim.<name>(**kwargs) follows the same equation
    reference_kwargs: dict[str, Any] = field(default_factory=dict)  # extra, for references.py
    #: keywords under which the step computes in the param's dtype throughout, for the fp64
    #: reference tests (Muon's Newton–Schulz runs in bf16 otherwise, as torch's)
    exact: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.torch_parity and torch_class(self.name) is None:
            raise ValueError(f"case {self.name}: torch_parity=True, but the registry names "
                             "no torch twin of this class")

    @property
    def id(self) -> str:
        options = ",".join(f"{k}={v}" for k, v in self.kwargs.items() if k != "lr")
        return f"{self.name}({options})"

    @property
    def cls(self) -> type[optimlab.Optimizer]:
        return getattr(optimlab, self.name)

    def build(self, params: Any, **extra: Any) -> optimlab.Optimizer:
        return optimizer_class(self.name)(params, **{**self.kwargs, **extra})

    def build_torch(self, params: Any, **extra: Any) -> torch.optim.Optimizer:
        """torch.optim's twin under the case's keywords (a torch_parity case only)."""
        return torch_class(self.name)(params, **{**self.kwargs, **extra})

    def shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape a generic test gives this case for ``shape`` (``taken_shape``)."""
        return taken_shape(self.cls, shape)


def taken_shape(cls: type[optimlab.Optimizer], shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape``, or for a rule that declares itself a matrix rule (Muon: 2-D params only)
    a 2-D shape of as many elements, so that a generic test reads the declaration rather
    than assuming that every rule takes every shape."""
    if cls.rule.structure != MATRIX or len(shape) == 2:
        return tuple(shape)
    if len(shape) < 2:
        return (1, math.prod(shape))
    return (shape[0], math.prod(shape[1:]))


def groups_for(cls: type[optimlab.Optimizer], params: Any) -> list[dict]:
    """Param groups for ``params`` as a user of ``cls`` writes them: one group, or for a
    matrix rule the 2-D params in its own group and the others in a group naming its
    first companion rule (Muon's ``rule="adamw"``)."""
    params = list(params)
    if cls.rule.structure != MATRIX:
        return [{"params": params}]

    def ndim(item) -> int:  # a tensor, or a (name, tensor) pair as named_parameters gives
        return (item[1] if isinstance(item, tuple) else item).ndim

    matrices = [p for p in params if ndim(p) == 2]
    others = [p for p in params if ndim(p) != 2]
    companion = next(iter(cls.companions))
    return [{"params": matrices}] + ([{"params": others, "rule": companion}] if others else [])


def _torch(name: str, *kwargs: dict[str, Any]) -> list[Case]:
    return [Case(name, k) for k in kwargs]


def _ours(name: str, *kwargs: dict[str, Any]) -> list[Case]:
    return [Case(name, k, torch_parity=False) for k in kwargs]


CASES = [
    *_torch("SGD", {"lr": 0.05}, {"lr": 0.05, "maximize": True}, {"lr": 0.05, "momentum": 0.9},
            {"lr": 0.05, "momentum": 0.9, "dampening": 0.3},
            {"lr": 0.05, "momentum": 0.9, "nesterov": True},
            {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1, "maximize": True}),
    *_ours("SGD", {"lr": 0.05, "momentum": 0.9, "momentum_form": "ema"},
           {"lr": 0.05, "momentum": 0.8, "momentum_form": "ema", "nesterov": True},
           {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1, "weight_decay_form": "decoupled"},
           {"lr": 0.05, "weight_decay": 0.1, "weight_decay_form": "independent"}),
    *_torch("Adagrad", {"lr": 0.1}, {"lr": 0.1, "lr_decay": 0.05},
            {"lr": 0.1, "initial_accumulator_value": 0.3, "eps": 1e-3},
            {"lr": 0.1, "weight_decay": 0.1, "maximize": True}),
    *_ours("Adagrad", {"lr": 0.1, "eps": 1e-3, "eps_placement": "inside"},
           {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.2, "eps": 1e-2,
            "eps_placement": "inside"},
           {"lr": 0.1, "weight_decay": 0.1, "weight_decay_form": "decoupled"}),
    *_torch("RMSprop", {"lr": 0.01}, {"lr": 0.01, "alpha": 0.9, "eps": 1e-3},
            {"lr": 0.01, "centered": True}, {"lr": 0.01, "momentum": 0.9},
            {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
            {"lr": 0.01, "maximize": True}),
    *_ours("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-3, "eps_placement": "inside"},
           {"lr": 0.01, "centered": True, "momentum": 0.5, "eps": 1e-2,
            "eps_placement": "inside"},
           {"lr": 0.01, "weight_decay": 0.1, "weight_decay_form": "independent"}),
    *_torch("Adam", {"lr": 0.01}, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6},
            {"lr": 0.01, "amsgrad": True}, {"lr": 0.01, "weight_decay": 0.1},
            {"lr": 0.01, "maximize": True, "amsgrad": True}),
    Case("Adam", {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.1},
         reference_kwargs={"weight_decay_form": "decoupled"}),
    *_ours("Adam", {"lr": 0.01, "bias_correction": False}, {"lr": 0.01, "eps_root": 1e-4},
           {"lr": 0.01, "eps": 1e-4, "eps_placement": "inside"},
           {"lr": 0.01, "amsgrad": True, "bias_correction": False, "weight_decay": 0.1}),
    *_torch("AdamW", {"lr": 0.01}, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
            {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    *_ours("AdamW", {"lr": 0.01, "weight_decay": 0.05, "weight_decay_form": "independent"},
           {"lr": 0.01, "bias_correction": False, "eps_root": 1e-6}),
    # Adafactor (per-tensor, factored) and Muon (matrix), torch's keywords then the papers'
    *_torch("Adafactor", {"lr": 0.01}, {"lr": 0.05, "weight_decay": 0.1, "d": 2.0},
            {"lr": 0.01, "beta2_decay": -0.5, "eps": (1e-6, 1e-2), "maximize": True}),
    *_ours("Adafactor", {"lr": 0.01, "beta1": 0.9},
           {"lr": 0.01, "relative_step": False, "scale_parameter": False},
           {"lr": 0.01, "weight_decay": 0.1, "weight_decay_form": "l2"}),
    *[Case("Muon", kwargs, parity, exact={"ns_dtype": torch.float64}) for parity, kwargs in (
        (True, {"lr": 0.02}),
        (True, {"lr": 0.02, "nesterov": False, "adjust_lr_fn": "match_rms_adamw"}),
        (True, {"lr": 0.02, "momentum": 0.9, "weight_decay": 0.0, "ns_steps": 3,
                "adjust_lr_fn": "original"}),
        (False, {"lr": 0.02, "maximize": True}),
        (False, {"lr": 0.02, "weight_decay": 0.1, "weight_decay_form": "independent"}))],
    Case("Muon", {"lr": 0.02, "preset": "keller"}, torch_parity=False,
         reference_kwargs={"weight_decay": 0.0, "newton_schulz": "keller"},
         exact={"ns_dtype": torch.float64}),
    # the convention switches the framework presets are made of, each alone
    *_ours("SGD", {"lr": 0.05, "momentum": 0.9, "lr_in_momentum": True},
           {"lr": 0.05, "momentum": 0.9, "nesterov": True, "lr_in_momentum": True},
           {"lr": 0.05, "momentum": 0.8, "momentum_form": "ema", "lr_in_momentum": True},
           {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "lr_in_momentum": True}),
    *_ours("RMSprop", {"lr": 0.01, "momentum": 0.9, "lr_in_momentum": True},
           {"lr": 0.01, "initial_accumulator_value": 1.0, "eps": 1e-3,
            "eps_placement": "inside"},
           {"lr": 0.01, "centered": True, "momentum": 0.5, "initial_accumulator_value": 0.5,
            "lr_in_momentum": True}),
    *_ours("Adam", {"lr": 0.01, "eps": 1e-2, "eps_placement": "hat"},
           {"lr": 0.01, "eps": 1e-3, "eps_root": 1e-3, "amsgrad": True, "eps_placement": "hat"},
           {"lr": 0.01, "eps": 1e-2, "bias_correction": False, "eps_placement": "hat"}),
    # the framework presets: reference_kwargs spell out each one's settings, as read in
    # the framework's source (keras/src/optimizers, optax/_src/alias.py, timm/optim)
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1, "preset": "keras"},
         torch_parity=False, reference_kwargs={"lr_in_momentum": True,
                                               "weight_decay_form": "decoupled"}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "preset": "optax"},
         torch_parity=False),
    Case("Adagrad", {"lr": 0.1, "preset": "keras", "weight_decay": 0.1}, torch_parity=False,
         reference_kwargs={"initial_accumulator_value": 0.1, "eps": 1e-7,
                           "eps_placement": "inside", "weight_decay_form": "decoupled"}),
    Case("Adagrad", {"lr": 0.1, "preset": "optax"}, torch_parity=False,
         reference_kwargs={"initial_accumulator_value": 0.1, "eps": 1e-7,
                           "eps_placement": "inside"}),
    *[Case("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": centered, "preset": preset},
           torch_parity=False, reference_kwargs={**settings, "alpha": 0.9,
                                                 "eps_placement": "inside",
                                                 "lr_in_momentum": True})
      for centered, preset, settings in (
          (False, "keras", {"eps": 1e-7, "weight_decay_form": "decoupled"}),
          (True, "optax", {"eps": 1e-8}),
          (False, "timm_tf", {"eps": 1e-10, "initial_accumulator_value": 1.0}))],
    Case("Adam", {"lr": 0.01, "weight_decay": 0.1, "preset": "keras"}, torch_parity=False,
         reference_kwargs={"eps": 1e-7, "eps_placement": "hat",
                           "weight_decay_form": "decoupled"}),
    Case("Adam", {"lr": 0.01, "eps_root": 1e-6, "preset": "optax"}, torch_parity=False),
    Case("AdamW", {"lr": 0.01, "preset": "keras"}, torch_parity=False,
         reference_kwargs={"eps": 1e-7, "eps_placement": "hat", "weight_decay": 4e-3}),
    Case("AdamW", {"lr": 0.01, "preset": "optax"}, torch_parity=False,
         reference_kwargs={"weight_decay": 1e-4}),
    # the rest of torch.optim's catalog: torch's configurations, then each convention
    # (maximize for these six: torch's own samples, tests/test_torch_optim_db.py, and the
    # fuzzer's fp64 references cover it; fewer cases keep the CI matrix small)
    *_torch("NAdam", {"lr": 0.01}, {"lr": 0.01, "momentum_decay": 6e-3, "weight_decay": 0.1}),
    Case("NAdam", {"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 6e-3,
                   "decoupled_weight_decay": True},
         reference_kwargs={"weight_decay_form": "decoupled"}),
    *_ours("NAdam", {"lr": 0.01, "momentum_schedule": "constant"}),
    Case("NAdam", {"lr": 0.01, "weight_decay": 0.1, "preset": "keras"}, torch_parity=False,
         reference_kwargs={"eps": 1e-7, "momentum_decay": 1.0,
                           "weight_decay_form": "decoupled"}),
    Case("NAdam", {"lr": 0.01, "preset": "optax"}, torch_parity=False,
         reference_kwargs={"momentum_schedule": "constant"}),
    *_torch("RAdam", {"lr": 0.01}, {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-6}),
    Case("RAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
         reference_kwargs={"weight_decay_form": "decoupled"}),
    *_ours("RAdam", {"lr": 0.01, "betas": (0.8, 0.9), "threshold": 8.0}),
    Case("RAdam", {"lr": 0.01, "eps": 1e-3, "preset": "optax"}, torch_parity=False,
         reference_kwargs={"eps_placement": "outside"}),
    *_torch("Adamax", {"lr": 0.01}, {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    *_ours("Adamax", {"lr": 0.01, "eps": 1e-3, "eps_placement": "outside"}),
    Case("Adamax", {"lr": 0.01, "weight_decay": 0.1, "preset": "keras"}, torch_parity=False,
         reference_kwargs={"eps": 1e-7, "eps_placement": "outside",
                           "weight_decay_form": "decoupled"}),
    *_torch("Adadelta", {"lr": 1.0}, {"lr": 0.5, "rho": 0.95, "weight_decay": 0.1}),
    *_ours("Adadelta", {"lr": 0.5, "weight_decay": 0.1, "weight_decay_form": "decoupled"}),
    Case("Adadelta", {"lr": 0.5, "preset": "keras"}, torch_parity=False,
         reference_kwargs={"rho": 0.95, "eps": 1e-7}),
    *_torch("Rprop", {"lr": 0.01}, {"lr": 0.01, "etas": (0.5, 1.5), "step_sizes": (2e-3, 0.05)}),
    *_ours("Rprop", {"lr": 0.01, "weight_decay": 0.1}),
    *_torch("ASGD", {"lr": 0.01}, {"lr": 0.01, "lambd": 0.1, "t0": 5, "alpha": 0.5}),
    *_ours("ASGD", {"lr": 0.01, "t0": 3, "weight_decay": 0.1,
                    "weight_decay_form": "decoupled"}),
    # Lion and LAMB: no torch twin (tests/test_conformance_lion_lamb.py: timm,
    # lion-pytorch, optax). LAMB's global clip is off here, where every shape shares one
    # optimizer and the per-tensor reference cannot see the others' norms
    *_ours("Lion", {"lr": 0.01}, {"lr": 0.01, "weight_decay": 0.1},
           {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1,
            "weight_decay_form": "independent", "maximize": True},
           {"lr": 0.02, "betas": (0.9, 0.95), "weight_decay": 0.1, "weight_decay_form": "l2"}),
    *_ours("Lamb", {"lr": 0.01, "max_grad_norm": None},
           {"lr": 0.01, "max_grad_norm": None, "weight_decay": 0.0, "always_adapt": True,
            "trust_clip": True},
           {"lr": 0.01, "max_grad_norm": None, "grad_averaging": False,
            "bias_correction": False, "weight_decay_form": "decoupled", "weight_decay": 0.1},
           {"lr": 0.01, "max_grad_norm": None, "weight_decay_form": "l2", "weight_decay": 0.1,
            "maximize": True}),
]
CASES += [
    # schedule-free (facebookresearch's schedulefree; tests/test_schedulefree.py compares)
    *_ours("AdamWScheduleFree", {"lr": 0.01},
           {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1,
            "warmup_steps": 5},
           {"lr": 0.01, "r": 0.5, "weight_lr_power": 0.0, "maximize": True}),
    *_ours("SGDScheduleFree", {"lr": 0.05},
           {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1, "warmup_steps": 3, "r": 1.0,
            "weight_lr_power": 1.0, "maximize": True}),
]
TORCH_CASES = [case for case in CASES if case.torch_parity]
#: the cases whose rule is elementwise: what the generated C loop and the compiled
#: engine's flat buffers run (the generated engine declines the others; the compiled one
#: steps them with a call per tensor: tests/test_structures.py)
ELEMENTWISE_CASES = [case for case in CASES if CLASSES[case.name].rule.elementwise]
#: the optimizer classes' names, from the registry
NAMES = list(CLASSES)
#: those of them torch.optim has a twin of
TWINNED_NAMES = [name for name in NAMES if torch_class(name) is not None]
SHAPES = [(), (0,), (7,), (3, 4), (2, 3, 5)]


def reference_kwargs(case: Case) -> dict[str, Any]:
    """The case's keywords in the references' terms (torch-only keywords and the preset
    dropped: a preset's settings are spelled out in ``reference_kwargs``)."""
    kwargs = {k: v for k, v in case.kwargs.items()
              if k not in ("decoupled_weight_decay", "preset")}
    return {**kwargs, **case.reference_kwargs}


# --- state_dtype: how the moments are stored ----------------------------------------------

#: None: the param's dtype (as torch); bf16; int8: 8-bit blockwise codes (codecs.py). The
#: narrow ones apply to tensors of >= codecs.SMALL_TENSOR elements only: a test of this
#: axis needs such a tensor, e.g. BIG_SHAPE
STATE_DTYPES = {"param-dtype": None, "bf16": torch.bfloat16, "int8": torch.int8}
BIG_SHAPE = (64, codecs.SMALL_TENSOR // 64)
#: The CI matrix (OPTIMLAB_TEST_MATRIX=full, set by scripts/explore.sh, runs every case on
#: every engine with every storage). With moments in the param's dtype: every case on the
#: reference engine (the oracle) and on auto (the default); on native the cases whose
#: conventions are torch's (native runs the reference engine for the others); on generated,
#: one case per state structure of each optimizer (``state_structures``: an engine's layout,
#: resume and state dicts depend on which moments it keeps, not on the numbers); on
#: compiled, whose kernels cost seconds of Inductor each when its cache is cold, the first
#: case of each optimizer (tests/test_engines.py and tests/test_ckernel.py compile every
#: state structure and every convention). Narrow moments (bf16, 8 bits): on the reference
#: engine for every case that keeps a moment, or for the first such case of each optimizer
#: where a test asks for fewer; on auto and generated for the first such case of each
#: optimizer (an engine adds the mechanics of storing, not the rule's options); not on
#: native, which hands a tensor with narrow moments to the reference engine; not on compiled
#: (each case a kernel compiled, seconds; tests/test_codecs.py compiles every rule with both
#: codecs).
FULL_MATRIX = EXPLORE


def is_moment(optimizer: optimlab.Optimizer, key: str) -> bool:
    """Whether a state entry is a moment (a tensor the rule updates, stored as
    ``state_dtype`` asks), not a counter: torch's ``step`` and the 0-d values a rule keeps
    beside it (``Rule.scalar_state``: NAdam's mu_product, ASGD's eta and mu)."""
    return key != "step" and key not in optimizer.rule.scalar_state


def keeps_moments(case: Case) -> bool:
    """True if the configuration keeps a moment (plain SGD keeps none, so its storage
    changes nothing)."""
    param = torch.zeros(case.shape((3,)), requires_grad=True)
    optimizer = case.build([param], engine="reference")
    param.grad = torch.ones(param.shape)
    optimizer.step()
    return any(is_moment(optimizer, key) for key in optimizer.state[param])


def takes_state_dtype(case: Case, state_dtype: torch.dtype | None) -> bool:
    """False where the class refuses that storage (Adafactor's factored moments refuse
    8-bit codes: tests/test_factored.py checks the message)."""
    try:
        case.build([torch.zeros(case.shape((3,)), requires_grad=True)], state_dtype=state_dtype)
    except optimlab.ArgumentError:
        return False
    return True


_CONFIGS: dict[str, Any] = {}


def config_of(case: Case) -> Any:
    """The configuration a kernel is built for (views.Config: the rule, its options, the
    state it keeps), probed once per case (case ids are unique)."""
    if case.id not in _CONFIGS:
        probe = case.build([torch.ones(case.shape((2,)), requires_grad=True)],
                           engine="reference")
        _CONFIGS[case.id] = probe.view(probe.param_groups[0]).config
    return _CONFIGS[case.id]


def state_structures(cases: list[Case] = CASES) -> list[Case]:
    """The first case of each (optimizer, state keys) pair: SGD with and without momentum,
    RMSprop plain, centered, with momentum, Adam with and without amsgrad..."""
    chosen: dict[tuple, Case] = {}
    for case in cases:
        chosen.setdefault((case.name, config_of(case).state_keys), case)
    return list(chosen.values())


def one_per_config(cases: list[Case] = CASES) -> list[Case]:
    """Every case under explore; else the first case of each distinct configuration (the
    rule, its options and the state it keeps: what a compiled or generated kernel is
    built for). Cases that differ only in numbers (lr_decay, dampening, betas) run the
    same kernel with other scalars."""
    if FULL_MATRIX:
        return list(cases)
    chosen: dict = {}
    for case in cases:
        chosen.setdefault(config_of(case), case)
    return list(chosen.values())


def option_cover(cases: list[Case] = CASES) -> list[Case]:
    """Every case under explore; else few enough cases that each optimizer's every option
    value (each convention) and state structure still appears in one of them: a greedy
    cover over ``one_per_config``, for tests where each case compiles a kernel."""
    if FULL_MATRIX:
        return list(cases)
    chosen, covered = [], set()
    candidates = [(case, _features(case)) for case in one_per_config(cases)]
    while candidates:
        best = max(candidates, key=lambda item: len(item[1] - covered))
        if not best[1] - covered:
            break
        chosen.append(best[0])
        covered |= best[1]
        candidates.remove(best)
    return [case for case in cases if case in chosen]


def _features(case: Case) -> set:
    config = config_of(case)
    return {(case.name, key, value) for key, value in config.options} | \
        {(case.name, "state", config.state_keys)}


def firsts(cases: list[Case] = CASES) -> list[Case]:
    """The first case of each optimizer (torch's defaults)."""
    return [next(c for c in cases if c.name == name)
            for name in dict.fromkeys(c.name for c in cases)]


def in_ci_matrix(case: Case, engine: str, structures: list[Case]) -> bool:
    """Whether the CI run takes ``case`` on ``engine`` (moments in the param's dtype)."""
    if FULL_MATRIX or engine in ("reference", "auto"):
        return True
    if engine == "native":
        return case.torch_parity
    if engine == "compiled":  # seconds of Inductor per kernel, cold
        return case in firsts()
    return case in structures


def with_state_dtypes(engines: list[str], cases: list[Case] = CASES,
                      every_case: bool = True) -> list:
    """pytest params (case, state_dtype, engine) of the CI matrix above, or of the full one
    (``every_case`` False, for a test whose subject is not the rule: the other engines take
    one case per state structure, and narrow moments the first case of each optimizer on
    the reference engine too)."""
    narrowable = [case for case in cases if keeps_moments(case)]
    narrow_firsts, structures = firsts(narrowable), state_structures(cases)
    stores = {dtype: [case for case in narrowable if takes_state_dtype(case, dtype)]
              for dtype in STATE_DTYPES.values()}

    def runs(case: Case, state_dtype, engine: str) -> bool:
        if state_dtype is None:
            if not every_case and engine not in ("reference", "compiled") and not FULL_MATRIX:
                return case in structures
            return in_ci_matrix(case, engine, structures)
        if FULL_MATRIX:
            return True
        if engine == "reference":
            return every_case or case in narrow_firsts
        return engine not in ("native", "compiled") and case in narrow_firsts

    params = []
    for label, state_dtype in STATE_DTYPES.items():
        for case in cases if state_dtype is None else stores[state_dtype]:
            for engine in engines:
                if runs(case, state_dtype, engine):
                    params.append(pytest.param(case, state_dtype, engine,
                                               id=f"{case.id}-{label}-{engine}"))
    return params
