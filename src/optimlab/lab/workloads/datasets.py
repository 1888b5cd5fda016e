"""The lab's data: real data that ships with the packages, never a download.

* ``digits``: scikit-learn's bundled handwritten digits (1,797 8x8 images, 10 classes).
* ``text_corpus``: the English documentation text in the standard library's
  ``pydoc_data.topics`` (~465k characters: the Python reference manual's topics, the text
  ``help()`` shows). Every CPython installation has it, offline, so the character-level
  transformer trains on real prose with code in it, on any machine with Python.
* ``sparse_features``: generated data (the one task where real data is not the point):
  binary features, a few frequent and many rare, the rare ones carrying most of the signal.

Splits use a fixed data seed, independent of the run's seed, so every run of a task is
scored on the same held-out examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor

DATA_SEED = 0


@dataclass(frozen=True)
class Split:
    """Training and held-out tensors: inputs and targets."""

    train_inputs: Tensor
    train_targets: Tensor
    heldout_inputs: Tensor
    heldout_targets: Tensor


@lru_cache(maxsize=1)
def digits(heldout_fraction: float = 0.25) -> Split:
    """scikit-learn's digits, pixels scaled to [0, 1], a stratified held-out split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_train, x_held, y_train, y_held = train_test_split(
        data.data / 16.0, data.target, test_size=heldout_fraction,
        random_state=DATA_SEED, stratify=data.target)
    return Split(torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train),
                 torch.tensor(x_held, dtype=torch.float32), torch.tensor(y_held))


@lru_cache(maxsize=1)
def sparse_features(samples: int = 3000, frequent: int = 50, rare: int = 300,
                    rare_probability: float = 0.005) -> Split:
    """Binary features for logistic regression, where the informative ones are rare.

    ``frequent`` features are on in half of the samples and carry weak weights; ``rare``
    features are on in ``rare_probability`` of the samples and carry strong ones. The
    label is drawn from the logistic model, so the best possible accuracy is below 1.
    SGD's one learning rate is limited by the frequent features (large, frequent
    gradients) and barely moves the rare ones; adaptive methods scale each coordinate by
    its own gradient history, which is the seeds' claim this task tests.
    """
    generator = torch.Generator().manual_seed(DATA_SEED)
    on_frequent = torch.rand(samples, frequent, generator=generator) < 0.5
    on_rare = torch.rand(samples, rare, generator=generator) < rare_probability
    inputs = torch.cat([on_frequent, on_rare], dim=1).float()
    weak = 0.3 * torch.randn(frequent, generator=generator)
    strong = 4.0 * torch.randn(rare, generator=generator)
    logits = inputs @ torch.cat([weak, strong]) - 0.3 * frequent * weak.mean()
    targets = (torch.rand(samples, generator=generator) < torch.sigmoid(logits)).float()
    cut = samples * 2 // 3
    return Split(inputs[:cut], targets[:cut], inputs[cut:], targets[cut:])


@dataclass(frozen=True)
class Corpus:
    """A text as character ids: its alphabet, training ids and held-out ids."""

    alphabet: str
    train_ids: Tensor
    heldout_ids: Tensor


@lru_cache(maxsize=1)
def text_corpus(heldout_fraction: float = 0.1) -> Corpus:
    """``pydoc_data.topics`` joined in sorted topic order; the last 10% is held out."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[name] for name in sorted(topics))
    alphabet = "".join(sorted(set(text)))
    index = {char: i for i, char in enumerate(alphabet)}
    ids = torch.tensor([index[char] for char in text], dtype=torch.long)
    cut = int(len(ids) * (1 - heldout_fraction))
    return Corpus(alphabet, ids[:cut], ids[cut:])


# --- chance: the score of a model that ignores its inputs -----------------------------------


def majority_fraction(targets: Tensor) -> float:
    """The accuracy of always answering the most common class."""
    return torch.bincount(targets.long()).max().item() / len(targets)


def unigram_bits(corpus: Corpus) -> float:
    """Held-out bits per character of predicting the training text's character
    frequencies (add-one smoothed): what a model learns before it reads any context."""
    counts = torch.bincount(corpus.train_ids, minlength=len(corpus.alphabet)).double() + 1
    bits = -torch.log2(counts / counts.sum())
    return bits[corpus.heldout_ids].mean().item()
