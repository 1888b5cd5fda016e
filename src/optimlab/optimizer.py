"""The base class: a torch.optim.Optimizer whose step runs one rule through one engine.

Subclasses (optimizers.py) only declare: the rule, the valid values of each
hyperparameter, and their defaults under each preset. This class does the rest the way
torch.optim does it (param groups, closures, lazy state, state_dict) and refuses bad
input before anything is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from optimlab import bookkeeping, checkpoint, codecs, engines, state, views
from optimlab.checkpoint import param_label
from optimlab.engines import inductor
from optimlab.hyperparameters import ArgumentError, Choice, Optional_, Pair, Range
from optimlab.nonfinite import POLICIES, gradients_finite
from optimlab.params import check_unique, listed, param_tensor
from optimlab.rules import Rule, State
from optimlab.views import View

Spec = Range | Pair | Choice | Optional_
SPARSE_OPTIMIZERS = "optimlab.SGD and optimlab.Adagrad (or torch.optim.SparseAdam)"


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
    #: every group key that some optimlab optimizer declares (``__init_subclass__``), so
    #: that a checkpoint of another optimizer is recognised by its keys
    declared_keys: ClassVar[set[str]] = set()
    #: the other rules a param group may name (``group["rule"]``), by the name a group
    #: gives: the class whose rule, specs and torch defaults such a group takes (Muon's
    #: ``{"adamw": AdamW}``, for the embeddings, head, biases and norms beside its
    #: matrices). A group that names none runs ``rule``.
    companions: ClassVar[dict[str, type[Optimizer]]] = {}
    #: options that every group of one optimizer shares with its companions' groups
    SHARED_OPTIONS: ClassVar[tuple[str, ...]] = ("maximize", "foreach", "fused",
                                                 "differentiable", "state_dtype")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Optimizer.declared_keys |= set(cls.__dict__.get("specs", {}))

    def __init__(self, params: Any, given: Mapping[str, Any], *, preset: str = "torch",
                 engine: str = "auto", nonfinite: str = "ignore") -> None:
        owner = type(self).__name__
        Choice(tuple(self.presets)).check(owner, "preset", preset)
        Choice(tuple(engines.ENGINES)).check(owner, "engine", engine)
        Choice(POLICIES).check(owner, "nonfinite", nonfinite)
        defaults = {**self.presets[preset], **{k: v for k, v in given.items() if v is not None}}
        self.check_group(defaults)
        params = listed(owner, params)
        if not params:
            raise ArgumentError(f"{owner}: params is empty; valid: at least one tensor")
        self.preset = preset
        self.engine = engine
        self.nonfinite = nonfinite
        self._engine_caches: dict[Any, dict[str, Any]] = {}
        self._kept: dict[int, bookkeeping.Kept] = {}
        self._engines_used: dict[str, int] = {}
        super().__init__(params, defaults)
        if engine == "compiled":
            self._check_compilable(owner)

    def _check_compilable(self, owner: str) -> None:
        # meta tensors hold no data: any engine steps them through the reference engine
        devices = {p.device for g in self.param_groups for p in g["params"]
                   if p.device.type != "meta"}
        missing = sorted(str(d) for d in devices if not inductor.available(d))
        if missing:
            raise ArgumentError(f"{owner}: engine='compiled' cannot build kernels for "
                                f"{missing}: torch.compile needs a C++ compiler for the CPU "
                                "and Triton for CUDA; valid: engine='auto' or 'reference'")

    # --- validation ---------------------------------------------------------------------

    def kind_of(self, group: Mapping[str, Any]) -> Optimizer:
        """Whose rule, specs and defaults ``group`` follows: this optimizer's, or those of
        the companion it names (``group["rule"]``), as a bare instance of that class."""
        name = group.get("rule")
        if not self.companions or name is None or name == self.rule.name:
            return self
        if name not in self.companions:
            raise ArgumentError(f"{type(self).__name__}: rule={name!r} in a param group; "
                                f"valid: one of {[self.rule.name, *self.companions]}")
        kinds = self.__dict__.setdefault("_kinds", {})
        if name not in kinds:
            cls = self.companions[name]
            kind = kinds[name] = cls.__new__(cls)
            shared = {k: self.defaults[k] for k in self.SHARED_OPTIONS if k in self.defaults}
            kind.defaults = {**cls.presets["torch"], **shared}
        return kinds[name]

    @classmethod
    def group_specs(cls) -> dict[str, Spec]:
        """The specs of every key a group of this optimizer may hold, companions' too."""
        specs: dict[str, Spec] = {}
        for kind in (*cls.companions.values(), cls):
            specs.update(kind.specs)
        return specs

    def check_group(self, group: Mapping[str, Any], changed: set[str] | None = None) -> None:
        """Raise ArgumentError if any hyperparameter of ``group`` is out of its range
        (``changed``: only these keys changed since the group was checked: their ranges,
        and the checks across keys)."""
        kind = self._kind_with_its_keys(group)
        if kind is not self:
            kind.check_group(group, changed)
            return
        owner = type(self).__name__
        for name, spec in self.specs.items():
            if changed is None or name in changed:
                spec.check(owner, name, group[name])
        if group.get("differentiable") and group.get("state_dtype") == torch.int8:
            raise ArgumentError(f"{owner}: differentiable=True with state_dtype=torch.int8: "
                                "8-bit codes have no gradient; valid: state_dtype None or a "
                                "float dtype")
        form, decay = group.get("weight_decay_form"), group.get("weight_decay", 0)
        if form == "independent":
            Range(0.0, 1.0, closed=True).check(
                owner, "weight_decay (with weight_decay_form='independent')", decay)
        self.check_relations(owner, group)

    def _kind_with_its_keys(self, group: Mapping[str, Any]) -> Optimizer:
        """``kind_of(group)``, refusing a group whose ``rule`` was rewritten after it was
        added (it lacks the keys of the rule it now names)."""
        kind = self.kind_of(group)
        missing = sorted(k for k in kind.specs if k not in group)
        if missing and "rule" in group:
            raise ArgumentError(f"{type(self).__name__}: rule={group['rule']!r} in a param "
                                f"group that has no {missing}: a group's rule is fixed when "
                                "it is added; valid: add a new group with that rule")
        return kind

    def check_relations(self, owner: str, group: Mapping[str, Any]) -> None:
        """Constraints between hyperparameters; subclasses extend it."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group as torch does, after checking its params and hyperparameters."""
        owner = type(self).__name__
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise ArgumentError(f"{owner}: param_group={param_group!r} is invalid; valid: a "
                                "dict with a 'params' entry")
        group = dict(param_group)
        entries = [group["params"]] if isinstance(group["params"], Tensor) else listed(
            owner, group["params"])
        index = len(self.param_groups)
        differentiable = bool(group.get("differentiable", self.defaults["differentiable"]))
        tensors = [param_tensor(owner, f"params[{i}] of group {index}", item, differentiable)
                   for i, item in enumerate(entries)]
        check_unique(owner, self.param_groups, index, tensors)
        self.complete_group(group)
        self.check_group(group)
        group["params"] = entries
        group["skipped_steps"] = self.skipped_steps
        super().add_param_group(group)
        self.normalize_group(self.param_groups[-1])

    def normalize_group(self, group: dict[str, Any]) -> None:
        """Keep derived group keys consistent (at every step too: users and schedulers
        write into groups); subclasses extend it."""
        kind = self._kind_with_its_keys(group)
        if kind is not self:
            kind.normalize_group(group)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for key, value in (("preset", "torch"), ("engine", "reference"),
                           ("nonfinite", "ignore")):
            self.__dict__.setdefault(key, value)
        self._engine_caches, self._kept = {}, {}
        self.__dict__.setdefault("_engines_used", {})
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
        """Load a state dict of this optimizer (optimlab's or torch.optim's, any version).

        Matched by parameter name when both sides know the names, else by position as
        torch does; checked first, so that a state dict that does not fit raises a
        ValueError saying why and leaves the optimizer as it was (``checkpoint.py``).
        The check runs after the user's load_state_dict pre-hooks, on what they return.
        Each parameter's state is then made ready from the saved tensors, before any
        post-hook sees it (state.py: a numeric ``step`` becomes a tensor, moments are
        stored as this group's ``state_dtype`` asks).
        """
        before = (self.state, self.param_groups)
        prepared: dict[str, Any] = {}

        def prepare(optimizer: Optimizer, given: dict[str, Any]) -> dict[str, Any]:
            prepared.update(checkpoint.prepared(optimizer, given,
                                                self.declared_keys - set(self.group_specs())))
            return dict(prepared)

        pre = self.register_load_state_dict_pre_hook(prepare)
        post = self.register_load_state_dict_post_hook(
            lambda optimizer: self._restore(prepared), prepend=True)
        try:
            super().load_state_dict(state_dict)
        except BaseException:
            self.state, self.param_groups = before
            raise
        finally:
            pre.remove()
            post.remove()
            self._engine_caches, self._kept = {}, {}

    def _restore(self, loaded: Mapping[str, Any]) -> None:
        """Each parameter's state rebuilt from the saved tensors (not torch's casts, which
        turn 8-bit codes into floats and round fp32 moments of a bf16 param)."""
        saved_ids = [i for group in loaded["param_groups"] for i in group["params"]]
        placed = [(group, p) for group in self.param_groups for p in group["params"]]
        for saved_id, (group, param) in zip(saved_ids, placed, strict=True):
            entry = loaded["state"].get(saved_id)
            if isinstance(entry, Mapping):
                self.state[param] = state.restore(self.view(group), param, entry)

    def moment(self, param: Tensor, key: str) -> Tensor:
        """The moment ``key`` (``"exp_avg"``, ``"sum"``, ...) of ``param`` as fp32 (fp64 for
        fp64 params) in the param's shape, whatever form it is stored in (codecs.py).

        Example:
            >>> import torch, optimlab
            >>> weight = torch.nn.Parameter(torch.randn(64, 64))
            >>> opt = optimlab.AdamW([weight], state_dtype=torch.int8)
            >>> weight.grad = torch.randn(64, 64)
            >>> opt.step()
            >>> sorted(opt.state[weight])          # 8-bit codes, one fp32 scale per block
            ['exp_avg_absmax', 'exp_avg_codes', 'exp_avg_sq_absmax', 'exp_avg_sq_codes', 'step']
            >>> opt.moment(weight, "exp_avg_sq").dtype   # decoded
            torch.float32
        """
        stored = self.state.get(param)
        if not stored or codecs.stored_form(stored, key) is None:
            raise KeyError(f"{type(self).__name__}.moment: the parameter (shape "
                           f"{tuple(param.shape)}) has no moment {key!r} yet; it has "
                           f"{sorted(stored or {})}")
        dtype = torch.promote_types(param.real.dtype if param.is_complex() else param.dtype,
                                    torch.float32)
        value = codecs.decoded(stored, key, param.dtype if param.is_complex() else dtype)
        # a moment of the param's size in its shape; a factored one (declared shape) as is
        return value.view(param.shape) if value.numel() == param.numel() else value

    def complete_group(self, group: dict[str, Any]) -> None:
        """Fill keys a loaded group lacks (a torch.optim checkpoint has none of our options)
        from this optimizer's defaults (a group naming a companion rule: from its
        class's)."""
        kind = self.kind_of(group)
        if kind is not self:
            kind.complete_group(group)
            return
        for key, value in self.defaults.items():
            group.setdefault(key, value)

    # --- the step -----------------------------------------------------------------------

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step; return ``closure()``'s loss if a closure is given.

        Every group is checked before any tensor is modified: a refused step leaves
        params and state as they were. Autograd records the step only under
        ``differentiable=True``, as torch.optim's.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.set_grad_enabled(bool(self.defaults["differentiable"])):
            self._step()
        return loss

    def _step(self) -> None:
        batches = [self._batch(index, group) for index, group in enumerate(self.param_groups)]
        batches = views.with_global_scalars(batches, self.defaults)
        if self.nonfinite != "ignore" and not gradients_finite(
                type(self).__name__, self.param_groups, self.nonfinite, self.nonfinite_group):
            skipped = self.skipped_steps + 1
            for group in self.param_groups:
                group["skipped_steps"] = skipped
            return
        used: dict[str, int] = {}
        self._declined: dict[str, str] = {}
        for index, (view, params, grads) in enumerate(batches):
            if not params:
                continue
            runs = [(list(range(len(params))), {}, {})] if not view.rule.scalar_state else \
                state.scalar_runs(view, params, [self.state[p] for p in params])
            for positions, numbers, kept in runs:
                # a group split in runs (rare) keeps an engine cache per run
                cache_key = index if len(runs) == 1 else \
                    (index, *(id(params[i]) for i in positions))
                run_view = view.with_numbers(numbers) if numbers else view
                run_params, run_grads = [params[i] for i in positions], \
                    [grads[i] for i in positions]
                states = self._states(run_view, run_params)
                counts = engines.run(self.engine, run_view, run_params, run_grads, states,
                                     self._engine_caches.setdefault(cache_key, {}),
                                     self._declined)
                state.store_scalars(states, kept)
                for name, count in counts.items():
                    used[name] = used.get(name, 0) + count
        for group, (view, _, _) in zip(self.param_groups, batches, strict=True):
            group.update(views.kept_values(view))  # once every group has stepped
        self._engines_used = used

    def declined(self) -> dict[str, str]:
        """Why each engine that declined a group in the last step did so, e.g.
        ``{"generated": "rule 'lamb' is per-tensor (...)"}``: what ``auto`` walked past."""
        return dict(self.__dict__.get("_declined", {}))

    def engines_used(self) -> dict[str, int]:
        """How many tensors each engine stepped in the last step, e.g. ``{"native": 148,
        "reference": 2}`` (the engine asked for is ``optimizer.engine``)."""
        return dict(self._engines_used)

    def _states(self, view: View, params: list[Tensor]) -> list[State]:
        """Each param's state dict (created on first use, as torch does; none is created
        for a rule that keeps no state, such as SGD without momentum)."""
        if view.rule.counts_steps or view.config.state_keys:
            return [self.state[p] for p in params]
        return [{} for _ in params]

    def view(self, group: Mapping[str, Any]) -> View:
        """The rule's view of a group (views.py): its options, numbers and state keys."""
        return views.view(self.kind_of(group).rule, group)

    def _group_view(self, index: int, group: dict[str, Any]) -> View:
        """The group normalised, checked and viewed: anew, or kept from the last step
        with only the numbers that changed since checked again (bookkeeping.py)."""
        kept = self._kept.get(index)
        changed = None if kept is None else kept.changes(group)
        if changed is None or not changed <= kept.numbers:
            self.normalize_group(group)
            self.check_group(group)
            view = self.view(group)
            self._kept[index] = bookkeeping.Kept.of(group, view)
            return view
        if changed:
            self.check_group(group, changed)
            return kept.renumber(group, changed)
        return kept.view

    def _batch(self, index: int, group: dict[str, Any]) -> tuple[View, list[Tensor],
                                                                 list[Tensor]]:
        view = self._group_view(index, group)
        params, grads = [], []
        for position, param in enumerate(group["params"]):
            grad = param.grad
            if grad is None:
                continue
            if grad.is_sparse and not self.kind_of(group).rule.accepts_sparse:
                raise RuntimeError(
                    f"{type(self).__name__} does not support sparse gradients (parameter "
                    f"{param_label(group, index, position)}); optimizers that take sparse "
                    f"gradients: {SPARSE_OPTIMIZERS}")
            params.append(param)
            grads.append(grad)
        return views.with_group_values(view, group), params, grads
