"""The steps ``optimlab bench`` times: torch.optim's, optimlab's optimizers on each engine
(``auto`` runs the generated C kernel on the CPU), that kernel called directly with no
optimizer around it (``ckernel ...``: what the optimizer's bookkeeping costs) and
DeepSpeed's CPU Adam; each with the traffic that names its same-traffic floor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import optimlab
from optimlab.lab.bench.steps import KernelStep, deepspeed_adam

#: (state arrays per param, their state_dtype: None is the param's)
Traffic = tuple[int, Any]


@dataclass(frozen=True)
class Variant:
    """One way to take a step: a label, how to build it (an object with ``step()``), the
    traffic of its same-traffic floor, its optimizer, and whether it is torch.optim's."""

    label: str
    build: Callable[[list[torch.Tensor]], Any]
    traffic: Traffic
    algorithm: str
    main: bool = True  # in the default set
    peer: bool = False  # a torch.optim step: the fastest of an algorithm's is its baseline
    slow: bool = False  # seconds per step on the CPU: only when named (--variants), not --all


def describe_traffic(traffic: Traffic) -> str:
    states, dtype = traffic
    kind = {None: "fp32", torch.bfloat16: "bf16", torch.int8: "8-bit"}.get(dtype, str(dtype))
    return f"{states} {kind} state{'s' if states != 1 else ''}"


def _torch(name: str, **kw: Any) -> Callable:
    return lambda params: getattr(torch.optim, name)(params, **kw)


def _ours(name: str, **kw: Any) -> Callable:
    return lambda params: getattr(optimlab, name)(params, **kw)


def _kernel(name: str, **kw: Any) -> Callable:
    return lambda params: KernelStep(params, name, **kw)


def _peers(label: str, name: str, algorithm: str, states: int, fused: bool,
           main: tuple[str, ...], **kw: Any) -> list[Variant]:
    """torch.optim's for-loop, foreach and (where it has one) fused step."""
    forms = [("for-loop", {"foreach": False}), ("foreach", {"foreach": True})]
    forms += [("fused", {"fused": True})] if fused else []
    return [Variant(f"torch {label} {form}", _torch(name, **kw, **extra), (states, None),
                    algorithm, main=form in main, peer=True) for form, extra in forms]


def _matrices(build: Callable) -> Callable:
    """A step over the 2-D params only (Muon takes matrices; torch's refuses the rest)."""
    return lambda params: build([p for p in params if p.ndim == 2])


ADAM, SGD = {"lr": 1e-3}, {"lr": 1e-3, "momentum": 0.9}
BF16, INT8 = torch.bfloat16, torch.int8
VARIANTS = [
    *_peers("AdamW", "AdamW", "adamw", 2, True, ("for-loop", "fused"), **ADAM),
    Variant("optimlab AdamW auto (generated)", _ours("AdamW"), (2, None), "adamw"),
    Variant("optimlab AdamW native", _ours("AdamW", engine="native"), (2, None), "adamw",
            main=False),
    Variant("optimlab AdamW compiled", _ours("AdamW", engine="compiled"), (2, None), "adamw"),
    Variant("optimlab AdamW reference", _ours("AdamW", engine="reference"), (2, None),
            "adamw", main=False),
    Variant("ckernel AdamW (no optimizer around it)", _kernel("AdamW"), (2, None), "adamw",
            main=False),
    Variant("DeepSpeed CPU Adam (AdamW)", lambda params: deepspeed_adam(
        params, lr=1e-3, weight_decay=0.01, adamw_mode=True), (2, None), "adamw"),
    Variant("optimlab AdamW bf16 moments auto", _ours("AdamW", state_dtype=BF16), (2, BF16),
            "adamw"),
    Variant("optimlab AdamW bf16 moments compiled",
            _ours("AdamW", state_dtype=BF16, engine="compiled"), (2, BF16), "adamw",
            main=False),
    Variant("optimlab AdamW 8-bit moments auto", _ours("AdamW", state_dtype=INT8), (2, INT8),
            "adamw"),
    Variant("optimlab AdamW 8-bit moments compiled",
            _ours("AdamW", state_dtype=INT8, engine="compiled"), (2, INT8), "adamw",
            main=False),
    Variant("optimlab AdamW lr-independent decay",
            _ours("AdamW", weight_decay=1e-4, weight_decay_form="independent"), (2, None),
            "adamw", main=False),
    Variant("optimlab AdamW without bias correction", _ours("AdamW", bias_correction=False),
            (2, None), "adamw"),
    *_peers("Adam", "Adam", "adam", 2, True, ("fused",), **ADAM),
    Variant("optimlab Adam auto (generated)", _ours("Adam"), (2, None), "adam", main=False),
    Variant("optimlab Adam amsgrad", _ours("Adam", amsgrad=True), (3, None), "adam",
            main=False),
    Variant("optimlab Adam eps inside the root", _ours("Adam", eps_placement="inside"),
            (2, None), "adam"),
    Variant("optimlab Adam preset=keras", _ours("Adam", preset="keras"), (2, None), "adam",
            main=False),
    *_peers("SGD-momentum", "SGD", "sgd", 1, True, ("fused",), **SGD),
    Variant("optimlab SGD-momentum auto (generated)", _ours("SGD", **SGD), (1, None), "sgd"),
    Variant("optimlab SGD EMA momentum", _ours("SGD", momentum_form="ema", **SGD),
            (1, None), "sgd"),
    Variant("optimlab SGD nesterov, lr in momentum",
            _ours("SGD", nesterov=True, lr_in_momentum=True, **SGD), (1, None), "sgd",
            main=False),
    *_peers("Adagrad", "Adagrad", "adagrad", 1, True, ("fused",), lr=1e-2),
    Variant("optimlab Adagrad auto (generated)", _ours("Adagrad", lr=1e-2), (1, None),
            "adagrad"),
    Variant("optimlab Adagrad eps inside the root",
            _ours("Adagrad", lr=1e-2, eps_placement="inside"), (1, None), "adagrad",
            main=False),
    *_peers("RMSprop", "RMSprop", "rmsprop", 1, False, ("for-loop",), lr=1e-3),
    Variant("optimlab RMSprop auto (generated)", _ours("RMSprop", lr=1e-3), (1, None),
            "rmsprop"),
    Variant("optimlab RMSprop compiled", _ours("RMSprop", lr=1e-3, engine="compiled"),
            (1, None), "rmsprop", main=False),
    Variant("optimlab RMSprop centered+momentum",
            _ours("RMSprop", lr=1e-3, centered=True, momentum=0.9), (3, None), "rmsprop"),
    Variant("optimlab RMSprop preset=keras",
            _ours("RMSprop", lr=1e-3, preset="keras", momentum=0.9), (2, None),
            "rmsprop", main=False),
]
# Adafactor keeps R + C numbers per matrix and a variance per vector (traffic: ~param +
# grad; the 1-state floor is an upper bound of its traffic); Muon steps the 2-D params
# only, in both (its Newton–Schulz matmuls, not memory traffic, set its time)
VARIANTS += [
    *_peers("Adafactor", "Adafactor", "adafactor", 1, False, ("for-loop", "foreach"),
            lr=1e-2),
    Variant("optimlab Adafactor auto (reference)", _ours("Adafactor", lr=1e-2), (1, None),
            "adafactor"),
    Variant("torch Muon (2-D params)", _matrices(_torch("Muon", lr=0.02)), (1, None), "muon",
            main=False, peer=True, slow=True),
    Variant("optimlab Muon auto (reference; 2-D params)", _matrices(_ours("Muon", lr=0.02)),
            (1, None), "muon", main=False, slow=True),
]
BASELINE = "torch AdamW fused"
