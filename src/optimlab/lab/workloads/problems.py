"""Problems: one task instantiated for one seed — a model, its batches, its loss, its scores.

The runner sees only this interface (``Problem``): ``model``, ``next_batch()``,
``loss(batch)`` and ``evaluate()``. Supervised learning (the digits, sparse features, the
transformer, a user's own model) is ``SupervisedProblem``; the 2-D surfaces are in
surfaces.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import torch
from torch import Tensor, nn

LossFn = Callable[[Tensor, Tensor], Tensor]
MetricFn = Callable[[Tensor, Tensor], float]


class Problem(Protocol):
    """What the runner trains."""

    model: nn.Module

    def next_batch(self) -> Any: ...

    def loss(self, batch: Any) -> Tensor: ...

    def evaluate(self) -> dict[str, float]: ...


# --- batches ------------------------------------------------------------------------------


def tensor_batches(inputs: Tensor, targets: Tensor, batch_size: int,
                   generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
    """Shuffled minibatches, epoch after epoch; a last partial batch is dropped so that
    every step sees ``batch_size`` examples (all of them if there are fewer)."""
    count = len(inputs)
    size = min(batch_size, count)
    while True:
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - size + 1, size):
            chosen = order[start:start + size]
            yield inputs[chosen], targets[chosen]


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Steps in one pass over ``examples`` with ``tensor_batches``."""
    return max(1, examples // batch_size)


def loader_batches(loader: Iterable[Any]) -> Iterator[Any]:
    """A DataLoader's batches, epoch after epoch (the loader shuffles, if it does)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the DataLoader yielded no batches")


def text_windows(ids: Tensor, context: int, batch_size: int,
                 generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
    """Random windows of ``context`` characters and the same windows shifted by one."""
    while True:
        starts = torch.randint(0, len(ids) - context - 1, (batch_size,), generator=generator)
        offsets = starts[:, None] + torch.arange(context + 1)
        windows = ids[offsets]
        yield windows[:, :-1], windows[:, 1:]


def fixed_windows(ids: Tensor, context: int, count: int) -> tuple[Tensor, Tensor]:
    """``count`` windows spread evenly over ``ids``: the same held-out set every time."""
    starts = torch.linspace(0, len(ids) - context - 1, count).long()
    windows = ids[starts[:, None] + torch.arange(context + 1)]
    return windows[:, :-1], windows[:, 1:]


def chunks(inputs: Tensor, targets: Tensor, size: int = 512) -> list[tuple[Tensor, Tensor]]:
    """Held-out data in evaluation-sized pieces."""
    return [(inputs[i:i + size], targets[i:i + size]) for i in range(0, len(inputs), size)]


# --- scores ---------------------------------------------------------------------------------


def accuracy(outputs: Tensor, targets: Tensor) -> float:
    """Fraction right: argmax of class logits, or the sign of a single logit."""
    predicted = outputs.argmax(-1) if outputs.dim() > targets.dim() else (outputs > 0).long()
    return (predicted == targets.long()).float().mean().item()


def sequence_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean next-character cross-entropy (nats) over every position."""
    return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


def bits_per_character(logits: Tensor, targets: Tensor) -> float:
    """Held-out cross-entropy in bits: nats / ln 2."""
    return sequence_cross_entropy(logits, targets).item() / math.log(2)


class SupervisedProblem:
    """A model, its training batches, a loss, and scores on a fixed evaluation set.

    ``evaluate`` returns ``{prefix}_loss`` and ``{prefix}_{name}`` for each metric,
    where ``prefix`` says which data they were computed on (``heldout``).
    """

    def __init__(self, model: nn.Module, batches: Iterator[Any], evaluation: Iterable[Any],
                 loss_fn: LossFn, metrics: dict[str, MetricFn], prefix: str = "heldout"):
        self.model = model
        self.batches = batches
        self.evaluation = evaluation
        self.loss_fn = loss_fn
        self.metrics = metrics
        self.prefix = prefix

    def next_batch(self) -> Any:
        return next(self.batches)

    def loss(self, batch: Any) -> Tensor:
        inputs, targets = batch
        return self.loss_fn(self.model(inputs), targets)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Loss and metrics over the whole evaluation set, in eval mode."""
        was_training = self.model.training
        self.model.eval()
        outputs, targets = [], []
        for inputs, batch_targets in self.evaluation:
            outputs.append(self.model(inputs))
            targets.append(batch_targets)
        self.model.train(was_training)
        every_output, every_target = torch.cat(outputs), torch.cat(targets)
        scores = {f"{self.prefix}_loss": self.loss_fn(every_output, every_target).item()}
        for name, metric in self.metrics.items():
            scores[f"{self.prefix}_{name}"] = metric(every_output, every_target)
        return scores
