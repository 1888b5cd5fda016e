"""optimlab.param_groups: decay / no-decay by module type and ndim, on a hand-written
transformer with a custom-named norm, a tied head and frozen parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformer_block import TinyLM

import optimlab
from optimlab import param_groups, param_groups_summary

LINEAR_WEIGHTS = [f"blocks.{i}.{name}.weight" for i in range(2)
                  for name in ("attn.query", "attn.key", "attn.value", "attn.out", "mlp.0",
                               "mlp.2")]
BIASES = [f"blocks.{i}.{name}.bias" for i in range(2)
          for name in ("attn.query", "attn.key", "attn.value", "attn.out", "mlp.0", "mlp.2")]
NORMS = [f"blocks.{i}.{name}.gain" for i in range(2) for name in ("attn_norm", "mlp_norm")] + [
    "final_norm.weight", "final_norm.bias"]


def names(group) -> list[str]:
    return [name for name, _ in group["params"]]


def decaying(groups) -> set[str]:
    return {name for group in groups if group["weight_decay"] > 0 for name in names(group)}


def not_decaying(groups) -> set[str]:
    return {name for group in groups if group["weight_decay"] == 0 for name in names(group)}


@pytest.fixture
def model() -> TinyLM:
    torch.manual_seed(0)
    return TinyLM()


def test_transformer_split_by_type_and_ndim_with_a_custom_named_norm(model):
    groups = param_groups(model, weight_decay=0.1)
    assert [group["weight_decay"] for group in groups] == [0.1, 0.0]  # decaying group first
    # pos_embed is a bare 2-D parameter: it decays unless a pattern says otherwise
    assert decaying(groups) == {"pos_embed", *LINEAR_WEIGHTS}
    # ScaleNorm's gain is caught by ndim <= 1; the tied embedding / head is an embedding
    assert not_decaying(groups) == {"embed.weight", *BIASES, *NORMS}


def test_every_trainable_parameter_once_in_named_parameters_order(model):
    model.blocks[1].mlp.requires_grad_(False)  # frozen: left out
    groups = param_groups(model, weight_decay=0.01)
    listed = [tensor for group in groups for _, tensor in group["params"]]
    expected = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    assert len({id(p) for p in listed}) == len(listed) == len(expected)
    assert {id(p) for p in listed} == {id(p) for _, p in expected}
    for group in groups:  # within a group, model order and named_parameters' names
        positions = [[name for name, _ in expected].index(name) for name in names(group)]
        assert positions == sorted(positions)
    assert not any(name.startswith("blocks.1.mlp.") for group in groups for name in names(group))


def test_tied_parameter_appears_once_under_its_first_name(model):
    assert model.lm_head.weight is model.embed.weight
    groups = param_groups(model, 0.01)
    all_names = [name for group in groups for name in names(group)]
    assert "embed.weight" in all_names
    assert "lm_head.weight" not in all_names
    with_decay = param_groups(model, 0.01, decay_embeddings=True)
    assert "embed.weight" in decaying(with_decay)


def test_embeddings_decay_only_when_asked():
    model = nn.Sequential(nn.Embedding(50, 8), nn.EmbeddingBag(20, 8), nn.Linear(8, 3))
    assert not_decaying(param_groups(model, 0.01)) == {"0.weight", "1.weight", "2.bias"}
    assert decaying(param_groups(model, 0.01, decay_embeddings=True)) == {
        "0.weight", "1.weight", "2.weight"}


def test_norm_layers_of_every_kind_and_conv_weights():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.GroupNorm(2, 8),
        nn.InstanceNorm2d(8, affine=True), nn.Conv1d(8, 8, 1), nn.BatchNorm1d(8),
        nn.LayerNorm((4, 6)),  # a 2-D weight: caught by its type, not its ndim
        nn.RMSNorm(6), nn.ConvTranspose2d(8, 4, 2), nn.Linear(6, 2),
    )
    groups = param_groups(model, 5e-4)
    assert decaying(groups) == {"0.weight", "4.weight", "8.weight", "9.weight"}
    assert {"6.weight", "6.bias", "1.weight", "2.weight", "3.weight", "7.weight"} <= \
        not_decaying(groups)
    assert model[6].weight.ndim == 2


def test_multihead_attention_projections_decay():
    model = nn.TransformerEncoderLayer(16, nhead=4, dim_feedforward=32, batch_first=True)
    groups = param_groups(model, 0.01)
    assert decaying(groups) == {"self_attn.in_proj_weight", "self_attn.out_proj.weight",
                                "linear1.weight", "linear2.weight"}
    assert {"self_attn.in_proj_bias", "norm1.weight", "norm2.bias"} <= not_decaying(groups)


def test_forced_patterns_override_the_default(model):
    groups = param_groups(model, 0.01, force_no_decay=["pos_embed", "*.attn.query.weight"],
                          force_decay=["final_norm.*"])
    assert "pos_embed" in not_decaying(groups)
    assert "blocks.0.attn.query.weight" in not_decaying(groups)
    assert {"final_norm.weight", "final_norm.bias"} <= decaying(groups)


def test_one_string_is_one_pattern(model):
    groups = param_groups(model, 0.01, force_no_decay="pos_embed", force_decay="*.out.bias")
    assert "pos_embed" in not_decaying(groups)
    assert decaying(groups) == {*LINEAR_WEIGHTS, "blocks.0.attn.out.bias",
                                "blocks.1.attn.out.bias"}


def test_patterns_match_any_name_of_a_tied_parameter(model):
    groups = param_groups(model, 0.01, force_decay=["lm_head.*"])
    assert "embed.weight" in decaying(groups)


def test_predicate_decides_first_and_none_defers(model):
    seen = []

    def predicate(name, param, module):
        seen.append((name, type(module).__name__))
        if type(module).__name__ == "ScaleNorm":
            return True
        return False if name == "pos_embed" else None

    groups = param_groups(model, 0.01, predicate=predicate, force_decay=["pos_embed"])
    assert "blocks.1.mlp_norm.gain" in decaying(groups)
    assert "pos_embed" in not_decaying(groups)  # the predicate wins over the pattern
    assert "blocks.0.attn.key.bias" in not_decaying(groups)
    assert ("blocks.0.attn.key.weight", "Linear") in seen
    assert ("pos_embed", "TinyLM") in seen


def test_lr_multipliers_make_groups_with_scaled_lrs(model):
    groups = param_groups(model, 0.05, lr=1e-3,
                          lr_multipliers={"embed.*": 0.1, "blocks.1.*": 2.0})
    by_name = {name: group for group in groups for name in names(group)}
    assert by_name["embed.weight"]["lr"] == pytest.approx(1e-4)
    assert by_name["blocks.1.attn.out.weight"]["lr"] == pytest.approx(2e-3)
    assert by_name["blocks.1.attn.out.weight"]["weight_decay"] == 0.05
    assert by_name["blocks.1.attn.out.bias"]["lr"] == pytest.approx(2e-3)
    assert by_name["blocks.1.attn.out.bias"]["weight_decay"] == 0.0
    assert by_name["blocks.0.attn.out.weight"]["lr"] == pytest.approx(1e-3)
    keys = [(group["weight_decay"], group["lr"]) for group in groups]
    assert len(keys) == len(set(keys)) == 5  # (decay, 1x), (decay, 2x), (none, 0.1x, 1x, 2x)


def test_first_matching_multiplier_wins(model):
    groups = param_groups(model, 0.0, lr=1.0, lr_multipliers={"blocks.0.*": 0.5, "*": 3.0})
    by_name = {name: group["lr"] for group in groups for name in names(group)}
    assert by_name["blocks.0.mlp.0.weight"] == 0.5
    assert by_name["blocks.1.mlp.0.weight"] == 3.0


@pytest.mark.parametrize("cls", [optimlab.AdamW, torch.optim.AdamW, optimlab.SGD])
def test_optimizers_take_the_groups_and_keep_their_names(model, cls):
    groups = param_groups(model, 0.01, lr=1e-3, lr_multipliers={"embed.*": 0.1})
    expected = [(names(group), group["weight_decay"], group["lr"]) for group in groups]
    optimizer = cls(groups, lr=1e-3)  # torch.optim rewrites the dicts it is given in place
    built = [(group["param_names"], group["weight_decay"], group["lr"])
             for group in optimizer.param_groups]
    assert built == expected


def test_no_decay_group_is_not_decayed_by_adamw(model):
    """One AdamW step with λ = 0.5: only the decaying params differ from a λ = 0 step."""
    generator = torch.Generator().manual_seed(3)
    grads = {name: torch.randn(p.shape, generator=generator)
             for name, p in model.named_parameters()}
    moved = {}
    for decay in (0.5, 0.0):
        copy = TinyLM()
        copy.load_state_dict(model.state_dict())
        optimizer = optimlab.AdamW(param_groups(copy, decay), lr=0.1)
        for name, p in copy.named_parameters():
            p.grad = grads[name].clone()
        optimizer.step()
        moved[decay] = {name: p.detach().clone() for name, p in copy.named_parameters()}
    groups = param_groups(model, 0.5)
    for name in decaying(groups):
        assert not torch.equal(moved[0.5][name], moved[0.0][name]), name
    for name in not_decaying(groups):
        assert torch.equal(moved[0.5][name], moved[0.0][name]), name


def test_summary_lists_every_parameter_under_its_group(model):
    groups = param_groups(model, 0.01, lr=3e-4)
    text = param_groups_summary(groups)
    lines = text.splitlines()
    assert lines[0] == "group 0: weight_decay=0.01, lr=0.0003 -- 13 tensors, 24,960 parameters"
    header = next(i for i, line in enumerate(lines) if line.startswith("group 1:"))
    assert lines[header].startswith("group 1: weight_decay=0, lr=0.0003 -- 19 tensors")
    assert any(line.split() == ["pos_embed", "(12,", "32)"] for line in lines[:header])
    assert any(line.split() == ["blocks.0.attn_norm.gain", "(32,)"] for line in lines[header:])
    for name in decaying(groups) | not_decaying(groups):
        assert f"  {name} " in text
    optimizer = optimlab.AdamW(groups)
    assert param_groups_summary(optimizer) == text == param_groups_summary(
        optimizer.param_groups)


def test_summary_of_unnamed_groups():
    optimizer = torch.optim.SGD([torch.randn(3, 2, requires_grad=True)], lr=0.5)
    assert param_groups_summary(optimizer).splitlines() == [
        "group 0: weight_decay=0, lr=0.5 -- 1 tensor, 6 parameters",
        "  <group 0, #0>  (3, 2)"]


BAD = [
    (lambda m: param_groups([p for p in m.parameters()], 0.01),
     "param_groups: model is a list; valid: an nn.Module"),
    (lambda m: param_groups(m, -0.1), "param_groups: weight_decay=-0.1 is invalid; valid: "
     "weight_decay >= 0"),
    (lambda m: param_groups(m, float("inf")), "weight_decay=inf is invalid"),
    (lambda m: param_groups(m.requires_grad_(False), 0.01), "model has no trainable "
     "parameters"),
    (lambda m: param_groups(m, 0.01, lr_multipliers={"embed.*": 0.1}),
     "lr=None is invalid with lr_multipliers"),
    (lambda m: param_groups(m, 0.01, lr=1e-3, lr_multipliers={"embed.*": -1.0}),
     r"lr_multipliers\['embed.\*'\]=-1.0 is invalid"),
    (lambda m: param_groups(m, 0.01, decay_embeddings="yes"), "decay_embeddings='yes' is "
     "invalid"),
    (lambda m: param_groups(m, 0.01, force_decay=["*.bias"], force_no_decay=["blocks.0.*"]),
     "'blocks.0.attn.query.bias' matches force_decay pattern '\\*.bias' and force_no_decay "
     "pattern 'blocks.0.\\*'"),
    (lambda m: param_groups(m, 0.01, predicate=lambda name, p, module: "decay"),
     "predicate returned 'decay' for 'pos_embed'; valid: True, False or None"),
]


@pytest.mark.parametrize(("call", "message"), BAD)
def test_bad_input_is_refused_with_the_argument_and_valid_range(model, call, message):
    with pytest.raises(optimlab.ArgumentError, match=message) as error:
        call(model)
    assert "valid:" in str(error.value)
    assert isinstance(error.value, ValueError)
