"""Framework presets and the porting helpers: each preset against the defaults and
conventions its framework documents (tests/documented_presets.py, cited), that explicit
keywords win over it, and that every helper's closed form is exact where its docstring
says it is."""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path
from typing import Any

import pytest
import torch
from cases import optimizer_class, torch_class
from documented_presets import DOCUMENTED, PRESETS, ours

import optimlab
from optimlab import porting

STEPS = 30


def _param(gen: torch.Generator, shape=(4, 3)) -> torch.Tensor:
    return torch.randn(shape, dtype=torch.float64, generator=gen).requires_grad_()


def _train(optimizers, params, grads, lrs=None, on_step=None) -> None:
    """Feed the same gradients to each optimizer; set the lr of step t to lrs[t]."""
    for t, grad in enumerate(grads):
        for optimizer, param in zip(optimizers, params, strict=True):
            for group in optimizer.param_groups:
                if lrs is not None:
                    group["lr"] = lrs[t]
                if on_step is not None:
                    on_step(t + 1, group)
            param.grad = grad.clone()
            optimizer.step()


def _grads(gen: torch.Generator, shape=(4, 3), steps=STEPS) -> list[torch.Tensor]:
    return [torch.randn(shape, dtype=torch.float64, generator=gen) for _ in range(steps)]


def _schedule(peak: float, steps: int = STEPS) -> list[float]:
    """Linear warmup over 5 steps, then linear decay to a tenth of the peak."""
    return [peak * min(1.0, (t + 1) / 5) * (1 - 0.9 * t / steps) for t in range(steps)]


@pytest.mark.parametrize(("name", "preset"), PRESETS, ids=str)
def test_preset_has_the_frameworks_documented_defaults_and_conventions(name, preset) -> None:
    documented = DOCUMENTED[name, preset]
    optimizer = optimizer_class(name)([torch.randn(3, requires_grad=True)], preset=preset)
    group = optimizer.param_groups[0]
    assert optimizer.preset == preset
    for key, value in ours(documented.defaults).items():
        assert group[key] == value, (documented.framework, key)
    for key, (value, source) in documented.conventions.items():
        assert group[key] == value, (key, source)


@pytest.mark.parametrize(("name", "preset"), PRESETS, ids=str)
def test_what_a_framework_leaves_unsaid_is_torchs_default(name, preset) -> None:
    """A default the framework does not have (optax's required learning rate, a weight
    decay optax.adam has no argument for) is torch.optim's, as its signature gives it."""
    documented = DOCUMENTED[name, preset]
    said = {*ours(documented.defaults), *documented.conventions, "decoupled_weight_decay"}
    group = optimizer_class(name)([torch.randn(3, requires_grad=True)],
                                    preset=preset).param_groups[0]
    for key, parameter in inspect.signature(torch_class(name)).parameters.items():
        if key != "params" and key not in said:
            assert group[key] == parameter.default, key


#: where each framework defines what DOCUMENTED names: (package, file, class or function)
SOURCES = {"keras": ("keras", "src/optimizers/{module}.py", "{name}"),
           "optax": ("optax", "_src/alias.py", "{name}"),
           "timm": ("timm", "optim/rmsprop_tf.py", "RMSpropTF")}


def _installed_defaults(framework: str) -> dict[str, Any]:
    """The defaults in the installed framework's source, read without importing it (Keras
    takes seconds to import); a skip where it is not installed."""
    package, path, definition = SOURCES[framework.split(".")[0]]
    name = framework.rsplit(".", 1)[1]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed (pip install 'optimlab[conformance]')")
    file = Path(next(iter(spec.submodule_search_locations)), path.format(module=name.lower()))
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ClassDef) and node.name == definition.format(name=name):
            node = next(n for n in node.body if getattr(n, "name", "") == "__init__")
        if isinstance(node, ast.FunctionDef) and (
                node.name == "__init__" or node.name == definition.format(name=name)):
            arguments = node.args.args + node.args.kwonlyargs
            defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + \
                node.args.defaults + node.args.kw_defaults
            return {a.arg: ast.literal_eval(d) for a, d in zip(arguments, defaults,
                                                               strict=True) if d is not None}
    raise AssertionError(f"{framework} is not defined in {file}")


@pytest.mark.parametrize(("name", "preset"), PRESETS, ids=str)
def test_the_installed_framework_has_the_documented_defaults(name, preset) -> None:
    """The table against the framework's own source, where it is installed (the
    conformance extra): a release that changes a default shows up here."""
    documented = DOCUMENTED[name, preset]
    installed = _installed_defaults(documented.framework)
    for key, value in documented.defaults.items():
        assert installed[key] == value, (documented.framework, key)


# keywords that undo every setting of a preset, each equal to torch's default
TORCH_VALUES = {
    "SGD": {"lr": 1e-3, "lr_in_momentum": False, "weight_decay_form": "l2"},
    "Adagrad": {"lr": 1e-2, "initial_accumulator_value": 0.0, "eps": 1e-10,
                "eps_placement": "outside", "weight_decay_form": "l2"},
    "RMSprop": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "eps_placement": "outside",
                "lr_in_momentum": False, "initial_accumulator_value": 0.0,
                "weight_decay_form": "l2"},
    "Adam": {"eps": 1e-8, "eps_placement": "outside", "weight_decay_form": "l2"},
    "AdamW": {"eps": 1e-8, "eps_placement": "outside", "weight_decay": 1e-2},
}


@pytest.mark.parametrize(("name", "preset"), PRESETS, ids=str)
def test_explicit_keywords_equal_to_torchs_defaults_override_the_preset(name, preset,
                                                                        gen) -> None:
    """Keywords win over the preset even when they equal torch's defaults: with all of
    them given, the optimizer follows torch.optim step for step, under a schedule."""
    extra = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {"weight_decay": 0.1}
    if name == "AdamW":
        extra = {}
    ours, theirs = _param(gen), _param(gen)
    with torch.no_grad():
        theirs.copy_(ours)
    mine = optimizer_class(name)([ours], preset=preset, **TORCH_VALUES[name], **extra)
    twin = torch_class(name)
    torch_keywords = inspect.signature(twin).parameters
    other = twin([theirs], **extra, **{k: v for k, v in TORCH_VALUES[name].items()
                                              if k in torch_keywords})
    grads = _grads(gen)
    lrs = _schedule(0.01)
    _train([mine, other], [ours, theirs], grads, lrs)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_a_single_keyword_overrides_only_itself() -> None:
    params = [torch.randn(3, requires_grad=True)]
    group = optimlab.RMSprop(params, preset="timm_tf", alpha=0.99).param_groups[0]
    assert group["alpha"] == 0.99 and group["eps"] == 1e-10
    assert group["initial_accumulator_value"] == 1.0 and group["lr_in_momentum"] is True
    group = optimlab.Adam(params, preset="keras", decoupled_weight_decay=False).param_groups[0]
    assert group["weight_decay_form"] == "l2" and group["decoupled_weight_decay"] is False
    assert group["eps_placement"] == "hat"
    group = optimlab.AdamW(params, preset="keras", weight_decay_form="independent",
                           weight_decay=0.5).param_groups[0]
    assert group["weight_decay_form"] == "independent" and group["weight_decay"] == 0.5


def test_an_added_param_group_takes_the_presets_defaults() -> None:
    optimizer = optimlab.RMSprop([torch.randn(3, requires_grad=True)], preset="timm_tf")
    optimizer.add_param_group({"params": [torch.randn(2, requires_grad=True)], "lr": 0.1})
    group = optimizer.param_groups[1]
    assert group["lr"] == 0.1 and group["eps"] == 1e-10
    assert group["initial_accumulator_value"] == 1.0


def test_a_torch_checkpoint_keeps_its_own_numbers_and_takes_the_presets_new_options(
        gen) -> None:
    """Loading torch.optim.RMSprop's state into a timm_tf optimizer keeps the checkpoint's
    group values (alpha, eps) and fills the keys torch does not know from the preset."""
    param = _param(gen)
    theirs = torch.optim.RMSprop([param], lr=0.01, momentum=0.9)
    param.grad = torch.randn(param.shape, dtype=param.dtype, generator=gen)
    theirs.step()
    ours = optimlab.RMSprop([param], preset="timm_tf")
    ours.load_state_dict(theirs.state_dict())
    group = ours.param_groups[0]
    assert group["alpha"] == 0.99 and group["eps"] == 1e-8
    assert group["lr_in_momentum"] is True and group["initial_accumulator_value"] == 1.0


@pytest.mark.parametrize(("name", "kwargs"), [
    ("SGD", {"momentum": 0.9}), ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("SGD", {"momentum": 0.8, "momentum_form": "ema"}),
    ("RMSprop", {"momentum": 0.9}), ("RMSprop", {"momentum": 0.5, "centered": True}),
], ids=str)
def test_lr_in_momentum_matters_only_when_the_lr_changes(name, kwargs, gen) -> None:
    params = [_param(gen) for _ in range(4)]
    with torch.no_grad():
        for p in params[1:]:
            p.copy_(params[0])
    build = optimizer_class(name)
    optimizers = [build([p], lr=0.05, lr_in_momentum=inside, **kwargs)
                  for p, inside in zip(params, (False, True, False, True), strict=True)]
    grads = _grads(gen)
    _train(optimizers[:2], params[:2], grads)  # constant lr
    torch.testing.assert_close(params[0], params[1], rtol=1e-12, atol=1e-12)
    _train(optimizers[2:], params[2:], grads, _schedule(0.05))
    gap = (params[2] - params[3]).abs().max() / (params[2] - params[0]).abs().max()
    assert gap > 1e-3, gap


def test_lr_in_momentum_keeps_each_gradient_at_the_lr_of_its_step(gen) -> None:
    """Two steps by hand: v₂ = μη₁g₁ + η₂g₂ (inside) against η₂(μg₁ + g₂) (outside)."""
    mu, (lr1, lr2) = 0.9, (0.1, 0.01)
    g1, g2 = _grads(gen, (5,), 2)
    for inside, expected in ((True, mu * lr1 * g1 + lr2 * g2), (False, lr2 * (mu * g1 + g2))):
        param = _param(gen, (5,))
        start = param.detach().clone()
        optimizer = optimlab.SGD([param], lr=lr1, momentum=mu, lr_in_momentum=inside)
        _train([optimizer], [param], [g1, g2], [lr1, lr2])
        torch.testing.assert_close(start - param.detach() - lr1 * g1, expected,
                                   rtol=1e-12, atol=1e-12)


def test_rmsprop_initial_accumulator_value_is_the_first_square_avg(gen) -> None:
    """One step from E[g²]₀ = 1 (timm's RMSpropTF): s = α + (1 − α)g², θ ← θ − ηg/√(s + ε)."""
    param, grad = _param(gen, (6,)), _grads(gen, (6,), 1)[0]
    start = param.detach().clone()
    optimizer = optimlab.RMSprop([param], lr=0.1, alpha=0.9, eps=1e-3, eps_placement="inside",
                                 initial_accumulator_value=1.0)
    _train([optimizer], [param], [grad])
    square_avg = 0.9 + 0.1 * grad**2
    torch.testing.assert_close(optimizer.state[param]["square_avg"], square_avg)
    torch.testing.assert_close(param.detach(), start - 0.1 * grad / (square_avg + 1e-3).sqrt())


def test_eps_hat_is_torch_adam_with_the_ported_eps_at_each_step(gen) -> None:
    """eps_placement="hat" at ε̂ moves exactly as torch.optim.Adam whose eps is set to
    keras_epsilon_to_torch(ε̂, β₂, t) before step t — and differs from a constant eps."""
    eps_hat, betas = 1e-2, (0.9, 0.99)
    params = [_param(gen) for _ in range(3)]
    with torch.no_grad():
        for p in params[1:]:
            p.copy_(params[0])
    hat = optimlab.Adam([params[0]], lr=0.01, betas=betas, eps=eps_hat, eps_placement="hat")
    ported = torch.optim.Adam([params[1]], lr=0.01, betas=betas)
    constant = torch.optim.Adam([params[2]], lr=0.01, betas=betas, eps=eps_hat)

    def port(step, group):
        if group is ported.param_groups[0]:
            group["eps"] = porting.keras_epsilon_to_torch(eps_hat, betas[1], step)

    grads = [g * 1e-2 for g in _grads(gen)]  # small gradients: ε matters
    _train([hat, ported, constant], params, grads, _schedule(0.01), on_step=port)
    torch.testing.assert_close(params[0], params[1], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(params[0], params[2], rtol=1e-4, atol=0)


def test_eps_hat_without_bias_correction_is_eps_outside(gen) -> None:
    params = [_param(gen), _param(gen)]
    with torch.no_grad():
        params[1].copy_(params[0])
    optimizers = [optimlab.Adam([p], lr=0.01, eps=1e-2, bias_correction=False,
                                eps_placement=placement)
                  for p, placement in zip(params, ("hat", "outside"), strict=True)]
    _train(optimizers, params, _grads(gen))
    torch.testing.assert_close(params[0], params[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_ema_momentum_is_torch_sgd_at_the_ported_lr_under_a_schedule(nesterov, gen) -> None:
    mu = 0.8
    params = [_param(gen), _param(gen)]
    with torch.no_grad():
        params[1].copy_(params[0])
    ema = optimlab.SGD([params[0]], lr=0.1, momentum=mu, nesterov=nesterov,
                       momentum_form="ema")
    heavy = torch.optim.SGD([params[1]], lr=0.1, momentum=mu, nesterov=nesterov)
    lrs = _schedule(0.1)

    def port(step, group):
        if group is heavy.param_groups[0]:
            group["lr"] = porting.ema_lr_to_heavy_ball(lrs[step - 1], mu)

    _train([ema, heavy], params, _grads(gen), lrs, on_step=port)
    torch.testing.assert_close(params[0], params[1], rtol=1e-12, atol=1e-12)
    assert porting.heavy_ball_lr_to_ema(porting.ema_lr_to_heavy_ball(0.3, mu), mu) == \
        pytest.approx(0.3, rel=1e-15)


def test_decoupled_weight_decay_ported_to_independent_at_a_constant_lr(gen) -> None:
    lr, decay = 0.01, 0.1
    params = [_param(gen), _param(gen)]
    with torch.no_grad():
        params[1].copy_(params[0])
    decoupled = torch.optim.AdamW([params[0]], lr=lr, weight_decay=decay)
    independent = optimlab.AdamW(
        [params[1]], lr=lr, weight_decay_form="independent",
        weight_decay=porting.decoupled_to_independent_weight_decay(decay, lr))
    _train([decoupled, independent], params, _grads(gen))
    torch.testing.assert_close(params[0], params[1], rtol=1e-12, atol=1e-12)


def test_keras_and_torch_epsilon_are_inverse() -> None:
    for step in (1, 10, 1000):
        eps = porting.keras_epsilon_to_torch(1e-7, 0.999, step)
        assert porting.torch_epsilon_to_keras(eps, 0.999, step) == pytest.approx(1e-7, rel=1e-14)
    assert porting.keras_epsilon_to_torch(1e-7, 0.999, 1) == pytest.approx(1e-7 / 0.001**0.5)
    assert porting.keras_epsilon_to_torch(1e-7, 0.999, 10**6) == pytest.approx(1e-7)


@pytest.mark.parametrize(("call", "words"), [
    (lambda: porting.keras_epsilon_to_torch(1e-7, 0.999, 0), "step=0"),
    (lambda: porting.keras_epsilon_to_torch(1e-7, 0.999, 2.5), "step=2.5"),
    (lambda: porting.keras_epsilon_to_torch(1e-7, 1.0, 3), "0 <= beta2 < 1"),
    (lambda: porting.torch_epsilon_to_keras(-1.0, 0.9, 3), "eps >= 0"),
    (lambda: porting.ema_lr_to_heavy_ball(0.1, 1.0), "0 <= momentum < 1"),
    (lambda: porting.heavy_ball_lr_to_ema(-0.1, 0.9), "lr >= 0"),
    (lambda: porting.decoupled_to_independent_weight_decay(200.0, 0.1), "<= 1"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_porting_refuses_bad_input_naming_argument_and_range(call, words) -> None:
    with pytest.raises(optimlab.ArgumentError, match="valid") as error:
        call()
    assert words in str(error.value), str(error.value)
