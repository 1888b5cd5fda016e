"""optimlab.recipe and optimlab.clip_grad_norm: the fine-tuning loop end to end, equal to
seed 002's hand-written loop, resumable from a checkpoint, and the recipe page's example."""

from __future__ import annotations

import copy
import io
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional
from transformer_block import TinyLM, sequences

import optimlab
from optimlab import schedules

RECIPE_PAGE = Path(__file__).resolve().parents[1] / "docs" / "recipe.md"


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run several times faster on one thread than on two busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batches(data: torch.Tensor, count: int, size: int = 32, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(count):
        yield data[torch.randint(0, len(data), (size,), generator=generator)]


def finetune(model, optimizer, scheduler, data, steps, seed=1, clip=True):
    """Seed 002's loop; returns the losses and the pre-clip gradient norms."""
    losses, norms = [], []
    for batch in batches(data, steps, seed=seed):
        loss = model.loss(batch)
        loss.backward()
        if clip:
            norms.append(optimlab.clip_grad_norm(optimizer, max_norm=1.0))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses, norms


# --- the loop end to end ----------------------------------------------------------------------


def test_recipe_trains_a_transformer_block_and_the_loss_falls():
    torch.manual_seed(0)
    model, data = TinyLM(), sequences(256)
    with torch.no_grad():
        before = model.loss(data).item()
    optimizer, scheduler = optimlab.recipe(model, lr=3e-3, total_steps=80)
    assert isinstance(optimizer, optimlab.AdamW)
    losses, norms = finetune(model, optimizer, scheduler, data, 80)
    with torch.no_grad():
        after = model.loss(data).item()
    assert before == pytest.approx(math.log(16), rel=0.05)  # chance level at the start
    assert after < 0.25 * before
    assert sum(losses[-10:]) < 0.25 * sum(losses[:10])
    assert all(math.isfinite(norm) and norm > 0 for norm in norms)
    assert max(norms) > 1.0  # clipping was active at some steps
    assert scheduler.get_last_lr() == [0.0, 0.0]  # cosine to 0 at the last step


class Bertish(nn.Module):
    """A one-layer encoder named as HuggingFace names BERT's parameters, so that seed 002's
    name list ("bias", "LayerNorm.weight") finds its norms."""

    def __init__(self, vocab: int = 16, width: int = 32) -> None:
        super().__init__()
        self.embeddings = nn.ModuleDict({"word_embeddings": nn.Embedding(vocab, width),
                                         "LayerNorm": nn.LayerNorm(width)})
        self.attention = nn.MultiheadAttention(width, 4, batch_first=True)
        self.attention_output = nn.ModuleDict({"LayerNorm": nn.LayerNorm(width)})
        self.intermediate = nn.Linear(width, 2 * width)
        self.output = nn.ModuleDict({"dense": nn.Linear(2 * width, width),
                                     "LayerNorm": nn.LayerNorm(width)})
        self.classifier = nn.Linear(width, vocab)

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        x = self.embeddings["LayerNorm"](self.embeddings["word_embeddings"](inputs))
        mask = nn.Transformer.generate_square_subsequent_mask(inputs.shape[1], dtype=x.dtype)
        attended = self.attention(x, x, x, attn_mask=mask, need_weights=False)[0]
        x = self.attention_output["LayerNorm"](x + attended)
        x = self.output["LayerNorm"](x + self.output["dense"](
            functional.gelu(self.intermediate(x))))
        return functional.cross_entropy(self.classifier(x).flatten(0, 1), targets.flatten())


def hf_linear_with_warmup(step: int, num_warmup_steps: int, num_training_steps: int) -> float:
    """transformers' get_linear_schedule_with_warmup lr_lambda, as seed 002 uses it."""
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - step)
               / float(max(1, num_training_steps - num_warmup_steps)))


def seed_002_setup(model: nn.Module, lr: float, total_steps: int):
    """Seed 002's recipe as written there: name-based groups, AdamW, linear warmup."""
    no_decay = ["bias", "LayerNorm.weight"]
    grouped = [
        {"params": [p for n, p in model.named_parameters()
                    if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters()
                    if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(grouped, lr=lr)
    warmup = int(0.1 * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: hf_linear_with_warmup(step, warmup, total_steps))
    return optimizer, scheduler


def seed_002_loop(model, optimizer, scheduler, data, steps):
    for batch in batches(data, steps, seed=7):
        loss = model.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()


@pytest.mark.parametrize("optimizer", ["adamw", torch.optim.AdamW])
def test_recipe_equals_seed_002_hand_written_loop(optimizer):
    torch.manual_seed(0)
    by_hand = Bertish().double()
    ours = Bertish().double()
    ours.load_state_dict(by_hand.state_dict())
    data, steps, lr = sequences(128, seed=3), 40, 3e-3

    seed_optimizer, seed_scheduler = seed_002_setup(by_hand, lr, steps)
    seed_002_loop(by_hand, seed_optimizer, seed_scheduler, data, steps)

    groups = optimlab.param_groups(ours, weight_decay=0.01, decay_embeddings=True)
    same_split = [{id(p) for _, p in group["params"]} for group in groups]
    assert same_split == [{id(p) for p in group["params"]} for group in
                          seed_002_setup(ours, lr, steps)[0].param_groups]
    built, scheduler = optimlab.recipe(groups, lr=lr, total_steps=steps, warmup=0.1,
                                       schedule="linear", optimizer=optimizer)
    losses, _ = finetune(ours, built, scheduler, data, steps, seed=7)

    assert losses[-1] < 0.5 * losses[0]
    for (name, expected), (_, got) in zip(by_hand.named_parameters(), ours.named_parameters(),
                                          strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10, msg=name)


def test_default_groups_differ_from_seed_002_only_in_the_embedding():
    model = Bertish()
    names = {name for group in optimlab.param_groups(model, 0.01) if group["weight_decay"]
             for name, _ in group["params"]}
    seed_decays = {name for name, _ in model.named_parameters()
                   if not any(nd in name for nd in ("bias", "LayerNorm.weight"))}
    assert seed_decays - names == {"embeddings.word_embeddings.weight"}
    assert names <= seed_decays


def test_resuming_from_a_checkpoint_continues_exactly():
    data = sequences(128, seed=4)

    def fresh():
        torch.manual_seed(0)
        model = TinyLM()
        return (model, *optimlab.recipe(model, lr=3e-3, total_steps=30, warmup=5,
                                        schedule="wsd", min_lr_ratio=0.1,
                                        schedule_options={"decay": 0.3}))

    model, optimizer, scheduler = fresh()
    straight, _ = finetune(model, optimizer, scheduler, data, 30)

    model, optimizer, scheduler = fresh()
    first, _ = finetune(model, optimizer, scheduler, data, 12)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer)

    model, optimizer, scheduler = fresh()
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    # the rest of the batches: the same generator, advanced past the first 12
    rest = list(batches(data, 30))[12:]
    losses = []
    for batch in rest:
        loss = model.loss(batch)
        loss.backward()
        optimlab.clip_grad_norm(optimizer, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert first + losses == straight


# --- the recipe page's example (docs/recipe.md) ----------------------------------------------


def docs_recipe_example() -> str:
    text = RECIPE_PAGE.read_text(encoding="utf-8")
    section = text[text.index("# Recipe: parameter groups, warmup schedules, clipping"):]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_docs_fine_tuning_loop_runs_and_learns(capsys):
    namespace: dict = {}
    exec(compile(docs_recipe_example(), str(RECIPE_PAGE), "exec"), namespace)
    model, tokens, vocab = namespace["model"], namespace["tokens"], namespace["vocab"]
    with torch.no_grad():
        logits = model(tokens[:, :-1])
        loss = functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
    assert loss.item() < 0.2 * math.log(vocab)
    printed = capsys.readouterr().out
    assert "group 0: weight_decay=0.01" in printed
    assert "1.norm1.weight" in printed
    assert namespace["scheduler"].last_epoch == namespace["total_steps"]


# --- recipe's arguments -----------------------------------------------------------------------


@pytest.fixture
def model() -> TinyLM:
    torch.manual_seed(0)
    return TinyLM()


@pytest.mark.parametrize("name", ["linear", "cosine", "constant", "wsd"])
def test_each_schedule_by_name(model, name):
    floor = {} if name == "constant" else {"min_lr_ratio": 0.2}
    _, scheduler = optimlab.recipe(model, lr=1e-3, total_steps=100, warmup=7, schedule=name,
                                   **floor)
    assert scheduler.lr_lambdas[0] == schedules.get(name, 100, 7, **floor)


@pytest.mark.parametrize("entry", list(optimlab.registry.OPTIMIZERS.values()),
                         ids=lambda e: e.name)
def test_each_optimizer_by_name_with_its_keywords(model, entry):
    optimizer, _ = optimlab.recipe(model, lr=1e-3, total_steps=10, optimizer=entry.name,
                                   weight_decay=0.05, maximize=True)
    assert type(optimizer) is entry.cls
    assert optimizer.defaults["maximize"] is True
    # the name's keywords, but for the weight decay the recipe was given (nadamw's 0.01)
    assert all(optimizer.defaults[k] == v for k, v in entry.overrides.items()
               if k != "weight_decay")
    # decaying groups first (a matrix rule splits each into its own and its companion's)
    decays = [group["weight_decay"] for group in optimizer.param_groups]
    assert decays == sorted(decays, reverse=True) and set(decays) == {0.05, 0.0}


def test_optimizer_class_and_kwargs(model):
    optimizer, _ = optimlab.recipe(model, lr=1e-3, total_steps=10, optimizer=torch.optim.AdamW,
                                   betas=(0.9, 0.95), fused=False)
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.defaults["betas"] == (0.9, 0.95)
    assert optimizer.param_groups[0]["param_names"][0] == "pos_embed"


def test_groups_with_lr_multipliers_keep_their_ratio_along_the_schedule(model):
    groups = optimlab.param_groups(model, 0.1, lr=1e-3, lr_multipliers={"embed.*": 0.1})
    optimizer, scheduler = optimlab.recipe(groups, lr=1e-3, total_steps=20, warmup=0.2)
    embedding = next(group for group in optimizer.param_groups
                     if group["param_names"] == ["embed.weight"])
    others = [group for group in optimizer.param_groups if group is not embedding]
    for _ in range(12):
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = torch.randn_like(p)
        optimizer.step()
        scheduler.step()
        assert embedding["lr"] == pytest.approx(0.1 * others[0]["lr"])
    assert embedding["initial_lr"] == pytest.approx(1e-4)


BAD = [
    (dict(optimizer="no-such-optimizer"),
     "recipe: optimizer='no-such-optimizer' is invalid; valid: one of"),
    (dict(optimizer=nn.Linear), "recipe: optimizer=<class .*Linear'> is invalid"),
    (dict(schedule="step"), "schedules.get: schedule='step' is invalid; valid: one of"),
    (dict(warmup=101), "schedules.cosine: warmup=101 is invalid; valid: an int 0 <= warmup "
     "<= total_steps=100"),
    (dict(warmup=1.1), "warmup=1.1 is invalid"),
    (dict(total_steps=-100), "total_steps=-100 is invalid; valid: an int >= 1"),
    (dict(min_lr_ratio=1.5), "schedules.cosine: min_lr_ratio=1.5 is invalid; valid: "
     "0 <= min_lr_ratio <= 1"),
    (dict(schedule="constant", min_lr_ratio=0.1), "min_lr_ratio=0.1 is invalid with "
     "schedule='constant'"),
    (dict(schedule="wsd", schedule_options={"decay": 0.95}), "warmup \\+ decay = 10 \\+ 95 "
     "steps is invalid"),
    (dict(lr=-1.0), "AdamW: lr=-1.0 is invalid; valid: lr >= 0"),
    (dict(weight_decay=-0.1), "param_groups: weight_decay=-0.1 is invalid"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_input_names_the_argument(model, change, message):
    arguments = {"lr": 1e-3, "total_steps": 100, **change}
    with pytest.raises(optimlab.ArgumentError, match=message) as error:
        optimlab.recipe(model, **arguments)
    assert "valid:" in str(error.value)


@pytest.mark.parametrize("model_argument", [[], "model", [torch.randn(2, requires_grad=True)]])
def test_model_must_be_a_module_or_groups(model_argument):
    with pytest.raises(optimlab.ArgumentError, match=r"recipe: model is a .*; valid: an "
                       r"nn.Module, or a list of param-group dicts"):
        optimlab.recipe(model_argument, lr=1e-3, total_steps=10)


def test_recipe_clips_before_each_step_and_reports_the_norm(gen) -> None:
    """``clip=`` wires torch's clip_grad_norm_ into every step; the pre-clip norm is kept."""
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.LayerNorm(8),
                                torch.nn.Linear(8, 2))
    twin = copy.deepcopy(model)
    optimizer, _ = optimlab.recipe(model, lr=1e-2, total_steps=4, warmup=0, clip=0.5)
    by_hand, _ = optimlab.recipe(twin, lr=1e-2, total_steps=4, warmup=0)
    for _ in range(3):
        x = torch.randn(16, 6, generator=gen) * 10
        for net in (model, twin):
            net.zero_grad()
            net(x).pow(2).sum().backward()
        expected = float(torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.5))
        optimizer.step()
        by_hand.step()
        assert optimizer.grad_norm == pytest.approx(expected, rel=1e-6)
        assert expected > 0.5
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match=r"clip=-1 is invalid; valid: a norm > 0"):
        optimlab.recipe(model, lr=1e-2, total_steps=4, clip=-1)
