"""How each built-in task makes its problem for one seed (tasks.py lists the tasks).

Each ``make(seed, batch_size)`` seeds torch, builds a fresh model, and shuffles the
training data with a generator of its own, so that a run is the same whatever ran
before it in the process.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from optimlab.lab.workloads import datasets, models, more_data
from optimlab.lab.workloads.datasets import Split
from optimlab.lab.workloads.problems import (
    Problem,
    SupervisedProblem,
    accuracy,
    bits_per_character,
    chunks,
    fixed_windows,
    sequence_cross_entropy,
    steps_per_epoch,
    tensor_batches,
    text_windows,
)
from optimlab.lab.workloads.surfaces import SURFACES, SurfaceProblem


def classification_problem(data: Callable[[], Split], model: Callable[[], nn.Module]
                           ) -> Callable[[int, int], Problem]:
    """Problems of a classifier ``model()`` on the split ``data()``, scored by accuracy."""
    def make(seed: int, batch_size: int) -> Problem:
        split = data()
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        return SupervisedProblem(
            model(), tensor_batches(split.train_inputs, split.train_targets, batch_size,
                                    generator),
            chunks(split.heldout_inputs, split.heldout_targets),
            nn.functional.cross_entropy, {"accuracy": accuracy})
    return make


def digits_problem(model: Callable[[], nn.Module]) -> Callable[[int, int], Problem]:
    return classification_problem(datasets.digits, model)


def chance_of(data: Callable[[], Split]) -> Callable[[], float]:
    """The held-out accuracy of always answering the split's most common class."""
    return lambda: datasets.majority_fraction(data().heldout_targets)


def epoch_of(data: Callable[[], Split]) -> Callable[[int], int]:
    """Steps per pass over the split's training data."""
    return lambda batch_size: steps_per_epoch(len(data().train_inputs), batch_size)


def digits_chance() -> float:
    return datasets.majority_fraction(datasets.digits().heldout_targets)


def sparse_chance() -> float:
    return datasets.majority_fraction(datasets.sparse_features().heldout_targets)


def text_chance() -> float:
    return datasets.unigram_bits(datasets.text_corpus())


def digits_epoch(batch_size: int) -> int:
    return steps_per_epoch(len(datasets.digits().train_inputs), batch_size)


def sparse_problem(seed: int, batch_size: int) -> Problem:
    split = datasets.sparse_features()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    return SupervisedProblem(
        models.logistic_regression(split.train_inputs.shape[1]),
        tensor_batches(split.train_inputs, split.train_targets, batch_size, generator),
        chunks(split.heldout_inputs, split.heldout_targets),
        nn.functional.binary_cross_entropy_with_logits, {"accuracy": accuracy})


def sparse_epoch(batch_size: int) -> int:
    return steps_per_epoch(len(datasets.sparse_features().train_inputs), batch_size)


CONTEXT = 64


def text_problem(seed: int, batch_size: int) -> Problem:
    return text_problem_of(CONTEXT)(seed, batch_size)


def text_problem_of(context: int, layers: int = 2) -> Callable[[int, int], Problem]:
    """The character model's problems: ``context`` characters, ``layers`` blocks."""
    return lambda seed, batch_size: _text(seed, batch_size, context, layers)


def _text(seed: int, batch_size: int, context: int, layers: int) -> Problem:
    corpus = datasets.text_corpus()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    heldout = fixed_windows(corpus.heldout_ids, context, 256)
    return SupervisedProblem(
        models.TinyGPT(len(corpus.alphabet), context=context, layers=layers),
        text_windows(corpus.train_ids, context, batch_size, generator),
        chunks(*heldout, size=64), sequence_cross_entropy, {"bpc": bits_per_character})


def text_epoch(batch_size: int) -> int:
    return max(1, len(datasets.text_corpus().train_ids) // (CONTEXT * batch_size))


def surface_problem(name: str) -> Callable[[int, int], Problem]:
    def make(seed: int, batch_size: int) -> Problem:
        return SurfaceProblem(SURFACES[name], seed)
    return make




mnist1d_problem = classification_problem(more_data.mnist1d, models.mnist1d_mlp)
fashion_problem = classification_problem(more_data.fashion_mnist, models.fashion_mlp)
