"""The base class: a torch.optim.Optimizer whose step runs one rule through one engine.

Subclasses (optimizers.py) only declare: the rule, the valid values of each
hyperparameter, and their defaults under each preset. This class does the rest the way
torch.optim does it (param groups, closures, lazy state, state_dict) and refuses bad
input before anything is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from optimlab import checkpoint, codecs, compiled, engines
from optimlab.checkpoint import param_label
from optimlab.hyperparameters import ArgumentError, Choice, Pair, Range
from optimlab.rules import Rule, State

Spec = Range | Pair | Choice
NONFINITE_POLICIES = ("ignore", "skip", "raise")
SPARSE_OPTIMIZERS = "optimlab.SGD and optimlab.Adagrad (or torch.optim.SparseAdam)"


def _param_tensor(owner: str, where: str, item: Any) -> Tensor:
    """The tensor of a params entry (a tensor, or a (name, tensor) pair), checked."""
    tensor = item[1] if isinstance(item, tuple) and len(item) == 2 else item
    if not isinstance(tensor, Tensor):
        raise ArgumentError(f"{owner}: {where} is a {type(tensor).__name__}; valid: a tensor, "
                            "or a (name, tensor) pair as named_parameters() gives")
    if not (tensor.is_floating_point() or tensor.is_complex()):
        raise ArgumentError(f"{owner}: {where} has dtype {tensor.dtype}; valid: a floating "
                            "point or complex dtype")
    if not tensor.is_leaf:
        raise ArgumentError(f"{owner}: {where} is not a leaf tensor (it was computed from "
                            "others); valid: a leaf, e.g. an nn.Parameter")
    return tensor


def _listed(owner: str, params: Any) -> list[Any]:
    """``params`` as a list, refusing what torch.optim refuses, with the reason."""
    if isinstance(params, Tensor):
        raise ArgumentError(f"{owner}: params is a single tensor; valid: an iterable of "
                            "tensors, of (name, tensor) pairs, or of param-group dicts")
    if isinstance(params, (set, frozenset)):
        raise ArgumentError(f"{owner}: params is a set, whose order changes between runs; "
                            "valid: a list or another ordered iterable")
    if not isinstance(params, Iterable):
        raise ArgumentError(f"{owner}: params={params!r} is not iterable; valid: an iterable "
                            "of tensors, of (name, tensor) pairs, or of param-group dicts")
    return list(params)


def _gradient_values(grad: Tensor) -> Tensor:
    """The numbers of a gradient: a sparse one's values, a complex one's (re, im) pairs."""
    values = grad.coalesce().values() if grad.is_sparse else grad
    return torch.view_as_real(values) if values.is_complex() else values


def _finite(tensors: list[Tensor]) -> bool:
    """True if no tensor holds a NaN or an Inf (tensors on one device).

    max |x| is NaN or Inf exactly when x holds one: a single reading pass. On DTensors
    (FSDP2) the max is a Partial("max") that is reduced over every shard before it is
    read, so all ranks get the same answer; ``bool(isfinite(x).all())`` would read only
    the local shard's.
    """
    tensors = [t for t in tensors if t.numel()]
    if not tensors:
        return True
    return bool(torch.stack(torch._foreach_norm(tensors, float("inf"))).isfinite().all())


class Optimizer(torch.optim.Optimizer):
    """Base class of optimlab's optimizers.

    A subclass sets ``rule`` (rules.py), ``specs`` (the valid values of each group key)
    and ``presets`` (defaults by preset name; ``"torch"`` is torch.optim's). Its
    constructor gathers its keywords and calls ``super().__init__``.
    """

    rule: ClassVar[Rule]
    specs: ClassVar[dict[str, Spec]]
    presets: ClassVar[dict[str, dict[str, Any]]]
    #: A process group whose ranks agree on ``nonfinite``: a NaN or Inf gradient on any of
    #: them skips (or raises on) all. Needed where each rank's optimizer sees only its
    #: shard of the parameters, as under ZeroRedundancyOptimizer:
    #: ``zero.optim.nonfinite_group = zero.process_group``. (FSDP2's DTensor gradients
    #: agree by themselves; DDP's are the same on every rank.)
    nonfinite_group: Any = None

    def __init__(self, params: Any, given: Mapping[str, Any], *, preset: str = "torch",
                 engine: str = "auto", nonfinite: str = "ignore") -> None:
        owner = type(self).__name__
        Choice(tuple(self.presets)).check(owner, "preset", preset)
        Choice(tuple(engines.ENGINES)).check(owner, "engine", engine)
        Choice(NONFINITE_POLICIES).check(owner, "nonfinite", nonfinite)
        defaults = {**self.presets[preset], **{k: v for k, v in given.items() if v is not None}}
        self.check_group(defaults)
        params = _listed(owner, params)
        if not params:
            raise ArgumentError(f"{owner}: params is empty; valid: at least one tensor")
        self.preset = preset
        self.engine = engine
        self.nonfinite = nonfinite
        self._engine_caches: dict[int, dict[str, Any]] = {}
        super().__init__(params, defaults)
        if engine == "compiled":
            self._check_compilable(owner)

    def _check_compilable(self, owner: str) -> None:
        devices = {p.device for g in self.param_groups for p in g["params"]}
        missing = sorted(str(d) for d in devices if not compiled.available(d))
        if missing:
            raise ArgumentError(f"{owner}: engine='compiled' cannot build kernels for "
                                f"{missing}: torch.compile needs a C++ compiler for the CPU "
                                "and Triton for CUDA; valid: engine='auto' or 'reference'")

    # --- validation ---------------------------------------------------------------------

    def check_group(self, group: Mapping[str, Any]) -> None:
        """Raise ArgumentError if any hyperparameter of ``group`` is out of its range."""
        owner = type(self).__name__
        for name, spec in self.specs.items():
            spec.check(owner, name, group[name])
        if group.get("differentiable"):
            raise ArgumentError(f"{owner}: differentiable=True is not supported; valid: False "
                                "(use torch.optim for a step that autograd can differentiate)")
        form, decay = group.get("weight_decay_form"), group.get("weight_decay", 0)
        if form == "independent":
            Range(0.0, 1.0, closed=True).check(
                owner, "weight_decay (with weight_decay_form='independent')", decay)
        self.check_relations(owner, group)

    def check_relations(self, owner: str, group: Mapping[str, Any]) -> None:
        """Constraints between hyperparameters; subclasses extend it."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group as torch does, after checking its params and hyperparameters."""
        owner = type(self).__name__
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise ArgumentError(f"{owner}: param_group={param_group!r} is invalid; valid: a "
                                "dict with a 'params' entry")
        group = dict(param_group)
        entries = [group["params"]] if isinstance(group["params"], Tensor) else _listed(
            owner, group["params"])
        index = len(self.param_groups)
        tensors = [_param_tensor(owner, f"params[{i}] of group {index}", item)
                   for i, item in enumerate(entries)]
        self._check_unique(owner, index, tensors)
        self.complete_group(group)
        self.check_group(group)
        group["params"] = entries
        group["skipped_steps"] = self.skipped_steps
        super().add_param_group(group)
        self.normalize_group(self.param_groups[-1])

    def _check_unique(self, owner: str, index: int, tensors: list[Tensor]) -> None:
        seen: dict[int, int] = {}
        for group_index, group in enumerate(self.param_groups):
            seen.update({id(p): group_index for p in group["params"]})
        for i, tensor in enumerate(tensors):
            if id(tensor) in seen:
                other = seen[id(tensor)]
                where = "earlier in the same group" if other == index else f"in group {other}"
                raise ArgumentError(f"{owner}: params[{i}] of group {index} (shape "
                                    f"{tuple(tensor.shape)}) is already {where}; valid: each "
                                    "parameter in exactly one group, once")
            seen[id(tensor)] = index

    def normalize_group(self, group: dict[str, Any]) -> None:
        """Keep derived group keys consistent; subclasses extend it."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for key, value in (("preset", "torch"), ("engine", "reference"),
                           ("nonfinite", "ignore")):
            self.__dict__.setdefault(key, value)
        self._engine_caches = {}
        skipped = self.skipped_steps
        for group in self.param_groups:
            self.complete_group(group)
            self.normalize_group(group)
            group["skipped_steps"] = skipped

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "preset": self.preset, "engine": self.engine,
                "nonfinite": self.nonfinite}

    @property
    def skipped_steps(self) -> int:
        """Steps skipped for non-finite gradients (``nonfinite="skip"``).

        The count is kept in every param group (``group["skipped_steps"]``), the one part
        of the state dict that torch.optim, ZeroRedundancyOptimizer's consolidation and
        torch.distributed.checkpoint all carry through save and load.
        """
        return max((int(g.get("skipped_steps", 0)) for g in self.param_groups), default=0)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this optimizer (optimlab's or torch.optim's).

        Matched by parameter name when both sides know the names, else by position as
        torch does; checked first, so that a state dict that does not fit raises a
        ValueError saying why and leaves the optimizer as it was (``checkpoint.py``).
        The check runs after the user's load_state_dict pre-hooks, on what they return.
        """
        before = (self.state, self.param_groups)
        prepared: dict[str, Any] = {}

        def prepare(optimizer: Optimizer, given: dict[str, Any]) -> dict[str, Any]:
            prepared.update(checkpoint.prepared(optimizer, given))
            return dict(prepared)

        handle = self.register_load_state_dict_pre_hook(prepare)
        try:
            super().load_state_dict(state_dict)
        except BaseException:
            self.state, self.param_groups = before
            raise
        finally:
            handle.remove()
            self._engine_caches = {}
        self._restore_codes(prepared)

    def _restore_codes(self, loaded: Mapping[str, Any]) -> None:
        """Put back the 8-bit codec's tensors as they were saved: torch's loader casts every
        state tensor of a floating-point param to the param's dtype, which would turn the
        int8/uint8 codes into floats and round the fp32 block scales of a bf16 param."""
        saved_ids = [i for group in loaded["param_groups"] for i in group["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        for saved_id, param in zip(saved_ids, params, strict=True):
            entry = loaded["state"].get(saved_id)
            if not isinstance(entry, Mapping):
                continue
            for key, value in entry.items():
                if isinstance(value, Tensor) and (key.endswith(codecs.SCALE_SUFFIX) or
                                                  key + codecs.SCALE_SUFFIX in entry):
                    self.state[param][key] = value.to(param.device, copy=True)

    def moment(self, param: Tensor, key: str) -> Tensor:
        """The moment ``key`` (``"exp_avg"``, ``"sum"``, ...) of ``param`` as fp32 (fp64 for
        fp64 params) in the param's shape, whatever form it is stored in (codecs.py).

        Example:
            >>> opt = optimlab.AdamW(model.parameters(), state_dtype=torch.int8)
            >>> opt.moment(model.weight, "exp_avg_sq")     # decoded 8-bit codes
        """
        state = self.state.get(param)
        if not state or key not in state:
            raise KeyError(f"{type(self).__name__}.moment: the parameter (shape "
                           f"{tuple(param.shape)}) has no moment {key!r} yet; it has "
                           f"{sorted(state or {})}")
        dtype = torch.promote_types(param.real.dtype if param.is_complex() else param.dtype,
                                    torch.float32)
        value = codecs.decoded(state, key, param.dtype if param.is_complex() else dtype)
        return value.view(param.shape)

    def complete_group(self, group: dict[str, Any]) -> None:
        """Fill keys a loaded group lacks (a torch.optim checkpoint has none of our options)
        from this optimizer's defaults."""
        for key, value in self.defaults.items():
            group.setdefault(key, value)

    # --- the step -----------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step; return ``closure()``'s loss if a closure is given.

        Every group is checked before any tensor is modified: a refused step leaves
        params and state as they were.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        batches = [self._batch(index, group) for index, group in enumerate(self.param_groups)]
        if self.nonfinite != "ignore" and not self._gradients_finite():
            skipped = self.skipped_steps + 1
            for group in self.param_groups:
                group["skipped_steps"] = skipped
            return loss
        update = engines.get_engine(self.engine)
        for index, (hp, params, grads) in enumerate(batches):
            if params:
                update(self.rule, hp, params, grads, self._states(hp, params),
                       self._engine_caches.setdefault(index, {}))
        return loss

    def _states(self, hp: Mapping[str, Any], params: list[Tensor]) -> list[State]:
        """Each param's state dict (created on first use, as torch does; none is created
        for a rule that keeps no state, such as SGD without momentum)."""
        if self.rule.counts_steps or self.rule.state_keys(hp):
            return [self.state[p] for p in params]
        return [{} for _ in params]

    def _gradients_finite(self) -> bool:
        """True if every gradient (on every rank of ``nonfinite_group``) is finite. With
        ``nonfinite="raise"``, raise FloatingPointError naming the first parameter whose
        gradient is not."""
        finite = self._local_gradients_finite()
        everywhere = finite if self.nonfinite_group is None else self._agree(finite)
        if everywhere:
            return True
        if self.nonfinite == "raise":
            where = (f"parameter {self._first_nonfinite()}" if not finite
                     else "a parameter on another rank")
            raise FloatingPointError(f"{type(self).__name__}: the gradient of {where} holds "
                                     "NaN or Inf; no parameter or state was changed")
        return False

    def _local_gradients_finite(self) -> bool:
        by_device: dict[torch.device, list[Tensor]] = {}
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    values = _gradient_values(param.grad)
                    by_device.setdefault(values.device, []).append(values)
        return all(_finite(values) for values in by_device.values())

    def _agree(self, finite: bool) -> bool:
        """True if ``finite`` on every rank of ``nonfinite_group`` (a collective call)."""
        import torch.distributed as dist

        device = next((p.device for g in self.param_groups for p in g["params"]),
                      torch.device("cpu"))
        flag = torch.tensor([0 if finite else 1], dtype=torch.int32, device=device)
        dist.all_reduce(flag, group=self.nonfinite_group)
        return int(flag.item()) == 0

    def _first_nonfinite(self) -> str:
        for index, group in enumerate(self.param_groups):
            for position, param in enumerate(group["params"]):
                if param.grad is not None and not _finite([_gradient_values(param.grad)]):
                    return param_label(group, index, position)
        return "(unknown)"

    def hyper(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """The rule's view of a group: its hyperparameters, betas split into beta1, beta2."""
        hp = {k: v for k, v in group.items()
              if k not in ("params", "param_names", "skipped_steps")}
        if "betas" in hp:
            hp["beta1"], hp["beta2"] = hp["betas"]
        return hp

    def _batch(self, index: int, group: dict[str, Any]) -> tuple[
            dict[str, Any], list[Tensor], list[Tensor]]:
        self.check_group(group)
        hp = self.hyper(group)
        params, grads = [], []
        for position, param in enumerate(group["params"]):
            if param.grad is None:
                continue
            if param.grad.is_sparse and not self.rule.accepts_sparse:
                raise RuntimeError(
                    f"{type(self).__name__} does not support sparse gradients (parameter "
                    f"{param_label(group, index, position)}); optimizers that take sparse "
                    f"gradients: {SPARSE_OPTIMIZERS}")
            params.append(param)
            grads.append(param.grad)
        return hp, params, grads

