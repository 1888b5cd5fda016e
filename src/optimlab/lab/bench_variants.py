"""The steps ``optimlab bench`` times: torch.optim's, optimlab's engines, the generated C
kernel called directly (``ckernel ...``, before the engines use it) and DeepSpeed's CPU
Adam; each with the traffic that names its same-traffic floor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import optimlab
from optimlab.lab.bench_steps import KernelStep, deepspeed_adam

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


ADAM, SGD = {"lr": 1e-3}, {"lr": 1e-3, "momentum": 0.9}
BF16, INT8 = torch.bfloat16, torch.int8
VARIANTS = [
    *_peers("AdamW", "AdamW", "adamw", 2, True, ("for-loop", "fused"), **ADAM),
    Variant("optimlab AdamW auto (native)", _ours("AdamW"), (2, None), "adamw"),
    Variant("optimlab AdamW compiled", _ours("AdamW", engine="compiled"), (2, None), "adamw"),
    Variant("optimlab AdamW reference", _ours("AdamW", engine="reference"), (2, None),
            "adamw", main=False),
    Variant("ckernel AdamW", _kernel("AdamW"), (2, None), "adamw"),
    Variant("DeepSpeed CPU Adam (AdamW)", lambda params: deepspeed_adam(
        params, lr=1e-3, weight_decay=0.01, adamw_mode=True), (2, None), "adamw"),
    Variant("optimlab AdamW bf16 moments", _ours("AdamW", state_dtype=BF16), (2, BF16),
            "adamw"),
    Variant("ckernel AdamW bf16 moments", _kernel("AdamW", state_dtype=BF16), (2, BF16),
            "adamw"),
    Variant("optimlab AdamW 8-bit moments", _ours("AdamW", state_dtype=INT8), (2, INT8),
            "adamw"),
    Variant("ckernel AdamW 8-bit moments", _kernel("AdamW", state_dtype=INT8), (2, INT8),
            "adamw"),
    Variant("ckernel AdamW lr-independent decay",
            _kernel("AdamW", weight_decay=1e-4, weight_decay_form="independent"), (2, None),
            "adamw", main=False),
    Variant("ckernel AdamW without bias correction", _kernel("AdamW", bias_correction=False),
            (2, None), "adamw", main=False),
    *_peers("Adam", "Adam", "adam", 2, True, ("fused",), **ADAM),
    Variant("optimlab Adam auto (native)", _ours("Adam"), (2, None), "adam", main=False),
    Variant("ckernel Adam", _kernel("Adam"), (2, None), "adam", main=False),
    Variant("ckernel Adam amsgrad", _kernel("Adam", amsgrad=True), (3, None), "adam",
            main=False),
    Variant("ckernel Adam eps inside the root", _kernel("Adam", eps_placement="inside"),
            (2, None), "adam"),
    Variant("ckernel Adam preset=keras", _kernel("Adam", preset="keras"), (2, None), "adam",
            main=False),
    *_peers("SGD-momentum", "SGD", "sgd", 1, True, ("fused",), **SGD),
    Variant("optimlab SGD-momentum auto (native)", _ours("SGD", **SGD), (1, None), "sgd"),
    Variant("ckernel SGD-momentum", _kernel("SGD", **SGD), (1, None), "sgd"),
    Variant("ckernel SGD EMA momentum", _kernel("SGD", momentum_form="ema", **SGD),
            (1, None), "sgd"),
    Variant("ckernel SGD nesterov, lr in momentum",
            _kernel("SGD", nesterov=True, lr_in_momentum=True, **SGD), (1, None), "sgd",
            main=False),
    *_peers("Adagrad", "Adagrad", "adagrad", 1, True, ("fused",), lr=1e-2),
    Variant("optimlab Adagrad auto (native)", _ours("Adagrad", lr=1e-2), (1, None),
            "adagrad"),
    Variant("ckernel Adagrad", _kernel("Adagrad", lr=1e-2), (1, None), "adagrad"),
    Variant("ckernel Adagrad eps inside the root",
            _kernel("Adagrad", lr=1e-2, eps_placement="inside"), (1, None), "adagrad",
            main=False),
    *_peers("RMSprop", "RMSprop", "rmsprop", 1, False, ("for-loop",), lr=1e-3),
    Variant("optimlab RMSprop auto (compiled)", _ours("RMSprop", lr=1e-3), (1, None),
            "rmsprop"),
    Variant("ckernel RMSprop", _kernel("RMSprop", lr=1e-3), (1, None), "rmsprop"),
    Variant("ckernel RMSprop centered+momentum",
            _kernel("RMSprop", lr=1e-3, centered=True, momentum=0.9), (3, None), "rmsprop"),
    Variant("ckernel RMSprop preset=keras",
            _kernel("RMSprop", lr=1e-3, preset="keras", momentum=0.9), (2, None),
            "rmsprop", main=False),
]
BASELINE = "torch AdamW fused"
