"""Muon (matrix rule) as a drop-in for torch.optim.Muon, Keller Jordan's conventions as a
preset, and the hybrid people train with: hidden matrices by Muon, the rest by AdamW, in
one optimizer (``group["rule"]``) that ``optimlab.recipe(model, optimizer="muon")`` builds,
whose checkpoints resume exactly."""

from __future__ import annotations

import io

import pytest
import torch
from snapshots import bitwise_equal, snapshot
from transformer_block import TinyLM, sequences

import optimlab

SHAPES = [(6, 4), (3, 8), (5, 5)]  # tall, wide, square


def _values(gen, shapes=SHAPES, dtype=torch.float32):
    return [torch.randn(s, dtype=dtype, generator=gen) for s in shapes]


def _leaves(values):
    return [v.clone().requires_grad_() for v in values]


def _steps(pairs, gen, steps, schedule=None):
    """Step each (optimizer, params) on the same gradients; ``schedule(t)`` sets every
    group's lr before step t."""
    for t in range(steps):
        grads = [torch.randn(p.shape, dtype=p.dtype, generator=gen) for p in pairs[0][1]]
        for optimizer, params in pairs:
            for group in optimizer.param_groups if schedule else ():
                group["lr"] = schedule(t)
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad.clone()
            optimizer.step()


def _through_disk(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kwargs", [{}, {"nesterov": False, "adjust_lr_fn": "match_rms_adamw",
                                          "weight_decay": 0.3, "ns_steps": 2}], ids=str)
def test_torchs_numbers_under_a_schedule(kwargs, dtype, gen) -> None:
    """Newton–Schulz in bf16 with torch's fused multiply-adds: torch's numbers, to the
    last rounding of the fp32 step."""
    values = _values(gen, dtype=dtype)
    ours, theirs = _leaves(values), _leaves(values)
    mine, other = optimlab.Muon(ours, **kwargs), torch.optim.Muon(theirs, **kwargs)
    _steps([(mine, ours), (other, theirs)], gen, 10, schedule=lambda t: 0.02 / (1 + t))
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(mine.state[p]["momentum_buffer"],
                                   other.state[q]["momentum_buffer"], rtol=0, atol=0)


def test_checkpoints_load_both_ways_mid_run(gen) -> None:
    values = _values(gen)
    straight, first_half = _leaves(values), _leaves(values)
    uninterrupted = torch.optim.Muon(straight, lr=0.02)
    theirs = torch.optim.Muon(first_half, lr=0.02)
    _steps([(uninterrupted, straight), (theirs, first_half)], gen, 3)
    ours = optimlab.Muon(first_half, lr=0.02)
    ours.load_state_dict(_through_disk(theirs.state_dict()))  # torch -> optimlab
    _steps([(uninterrupted, straight), (ours, first_half)], gen, 3)
    back = torch.optim.Muon(first_half, lr=0.02)
    back.load_state_dict(_through_disk(ours.state_dict()))  # optimlab -> torch
    _steps([(uninterrupted, straight), (back, first_half)], gen, 3)
    for p, q in zip(first_half, straight, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_non_2d_params_are_refused_with_torchs_message() -> None:
    message = r"Muon only supports 2D parameters whereas we found a parameter with size: " \
              r"torch.Size\(\[3\]\)"
    vector = torch.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        torch.optim.Muon([vector])
    with pytest.raises(optimlab.ArgumentError, match=message):
        optimlab.Muon([vector])
    optimizer = optimlab.Muon([torch.randn(2, 2, requires_grad=True)])
    with pytest.raises(optimlab.ArgumentError, match=message):
        optimizer.add_param_group({"params": [vector]})  # torch checks at construction only
    optimizer.add_param_group({"params": [vector], "rule": "adamw"})  # AdamW takes it
    assert optimizer.param_groups[-1]["betas"] == (0.9, 0.999)


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"lr": -1.0}, "lr"), ({"momentum": -0.1}, "momentum"),
    ({"weight_decay": -0.1}, "weight_decay"), ({"adjust_lr_fn": "other"}, "adjust_lr_fn"),
], ids=str)
def test_torchs_bad_inputs_are_refused_alike(kwargs, argument) -> None:
    param = torch.randn(3, 2, requires_grad=True)
    with pytest.raises(ValueError):
        torch.optim.Muon([param], **kwargs)
    with pytest.raises(optimlab.ArgumentError, match=f"{argument}.*invalid; valid: "):
        optimlab.Muon([param], **kwargs)


def test_what_torch_refuses_at_the_step_is_refused_at_construction() -> None:
    param = torch.randn(3, 2, requires_grad=True)
    param.grad = torch.randn(3, 2)
    for kwargs in ({"ns_steps": 100}, {"ns_coefficients": (1.0, 2.0)}):
        with pytest.raises(ValueError):
            torch.optim.Muon([param], **kwargs).step()
        with pytest.raises(optimlab.ArgumentError, match="ns_"):
            optimlab.Muon([param], **kwargs)


def test_keller_preset_is_his_repositorys_defaults() -> None:
    """github.com/KellerJordan/Muon, muon.py: ``Muon(params, lr=0.02, weight_decay=0,
    momentum=0.95)``, ``muon_update(..., ns_steps=5, nesterov=True)``, and
    ``zeropower_via_newtonschulz5`` (X/(‖X‖ + 1e-7), coefficients (3.4445, -4.7750,
    2.0315)): its formulas are tests/references.py's ``muon(newton_schulz="keller")``,
    which tests/test_rules_reference.py matches at 1e-12."""
    group = optimlab.Muon([torch.randn(2, 2, requires_grad=True)], preset="keller").defaults
    assert {k: group[k] for k in ("lr", "weight_decay", "momentum", "nesterov", "ns_steps",
                                  "ns_coefficients", "eps", "newton_schulz", "ns_dtype")} == {
        "lr": 0.02, "weight_decay": 0.0, "momentum": 0.95, "nesterov": True, "ns_steps": 5,
        "ns_coefficients": (3.4445, -4.7750, 2.0315), "eps": 1e-7, "newton_schulz": "keller",
        "ns_dtype": torch.bfloat16}


# --- one optimizer, two rules -----------------------------------------------------------------


def _hybrid_params(gen):
    return _values(gen, [(6, 4), (4, 4), (4,), (), (3, 2, 2)])


def test_the_hybrid_is_torchs_muon_and_adamw_in_one_optimizer(gen) -> None:
    """Matrices by Muon, the others by AdamW with AdamW's keywords: the numbers of a torch
    Muon and a torch AdamW side by side, and one state dict that round-trips."""
    values = _hybrid_params(gen)
    ours, theirs = _leaves(values), _leaves(values)
    mine = optimlab.Muon([{"params": ours[:2]},
                          {"params": ours[2:], "rule": "adamw", "lr": 3e-3,
                           "betas": (0.9, 0.95)}], lr=0.02)
    muon = torch.optim.Muon(theirs[:2], lr=0.02)
    adamw = torch.optim.AdamW(theirs[2:], lr=3e-3, betas=(0.9, 0.95))

    class Both:  # the two torch optimizers stepped as one
        param_groups: list = []

        @staticmethod
        def step():
            muon.step()
            adamw.step()

    _steps([(mine, ours), (Both, theirs)], gen, 6)
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    assert sorted(mine.state[ours[0]]) == ["momentum_buffer"]
    assert sorted(mine.state[ours[2]]) == ["exp_avg", "exp_avg_sq", "step"]
    assert [g["rule"] for g in mine.state_dict()["param_groups"]] == ["muon", "adamw"]


def test_the_hybrids_state_dict_loads_into_a_fresh_one_that_continues_identically(gen) -> None:
    values = _hybrid_params(gen)
    straight, resumed = _leaves(values), _leaves(values)

    def build(params):
        return optimlab.Muon([{"params": params[:2]},
                              {"params": params[2:], "rule": "adamw", "weight_decay": 0.0}],
                             lr=0.02)

    uninterrupted, first = build(straight), build(resumed)
    _steps([(uninterrupted, straight), (first, resumed)], gen, 4)
    saved = _through_disk(first.state_dict())
    second = build(resumed)
    second.load_state_dict(saved)
    assert second.state_dict()["param_groups"] == first.state_dict()["param_groups"]
    _steps([(uninterrupted, straight), (second, resumed)], gen, 4)
    assert bitwise_equal(snapshot(resumed, second), snapshot(straight, uninterrupted))


def test_a_groups_rule_rewritten_mid_run_is_refused_and_changes_nothing(gen) -> None:
    param = torch.randn(3, 3, requires_grad=True)
    optimizer = optimlab.Muon([param])
    param.grad = torch.randn(3, 3, generator=gen)
    optimizer.step()
    optimizer.param_groups[0]["rule"] = "adamw"
    before = snapshot([param], optimizer)
    with pytest.raises(optimlab.ArgumentError, match="a group's rule is fixed when it is"):
        optimizer.step()
    assert bitwise_equal(snapshot([param], optimizer), before)


def test_a_group_naming_an_unknown_rule_is_refused() -> None:
    with pytest.raises(optimlab.ArgumentError, match=r"rule='lion'.*valid: one of \['muon', "
                                                     r"'adamw'\]"):
        optimlab.Muon([{"params": [torch.randn(2, 2, requires_grad=True)], "rule": "lion"}])


# --- the recipe -------------------------------------------------------------------------------


def _recipe(model, total_steps=40):
    return optimlab.recipe(model, optimizer="muon", lr=0.02, weight_decay=0.01,
                           total_steps=total_steps, warmup=4, companion={"lr": 3e-3})


def test_recipe_muon_puts_hidden_matrices_on_muon_and_the_rest_on_adamw() -> None:
    model = TinyLM()
    optimizer, _ = _recipe(model)
    by_rule: dict[str, set[str]] = {}
    for group in optimizer.param_groups:
        by_rule.setdefault(group["rule"], set()).update(group["param_names"])
    hidden = {n for n, p in model.named_parameters() if n.startswith("blocks.") and p.ndim == 2}
    assert by_rule["muon"] == hidden
    assert {"embed.weight", "pos_embed", "final_norm.weight", "blocks.0.attn.query.bias",
            "blocks.0.attn_norm.gain"} <= by_rule["adamw"]
    assert all(g["initial_lr"] == (0.02 if g["rule"] == "muon" else 3e-3)
               for g in optimizer.param_groups)


def _train(model, optimizer, scheduler, data, steps):
    losses = []
    for _ in range(steps):
        loss = model.loss(data)
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def _model() -> TinyLM:
    torch.manual_seed(0)
    return TinyLM()


def test_recipe_muon_trains_a_transformer_and_resumes_exactly_from_a_checkpoint() -> None:
    data = sequences(64)
    straight = _model()
    optimizer, scheduler = _recipe(straight)
    losses = _train(straight, optimizer, scheduler, data, 40)
    assert losses[-1] < 0.7 * losses[0], losses

    first = _model()
    optimizer, scheduler = _recipe(first)
    _train(first, optimizer, scheduler, data, 20)
    saved = _through_disk({"model": first.state_dict(), "optimizer": optimizer.state_dict(),
                           "scheduler": scheduler.state_dict()})
    resumed = _model()
    resumed.load_state_dict(saved["model"])
    optimizer, scheduler = _recipe(resumed)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    _train(resumed, optimizer, scheduler, data, 20)
    for (name, p), q in zip(resumed.named_parameters(), straight.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_the_lab_takes_muon_as_a_spec() -> None:
    """The lab probes a spec on a param every rule takes (a 1×1 matrix) and trains it
    through the recipe: Muon for the matrices, AdamW for the rest."""
    from optimlab.lab.inputs.specs import parse_spec

    assert parse_spec("muon:lr=0.01").resolved()["lr"] == 0.01
