"""The lab's models: small enough to train in seconds on a CPU, real enough to matter."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def digits_mlp() -> nn.Module:
    """64 pixels -> 128 -> 128 -> 10 classes, ReLU."""
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def digits_cnn() -> nn.Module:
    """Two 3x3 convolutions and a max-pool over the 8x8 image, then a linear classifier."""
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)),
                         nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 4 * 4, 10))


def mnist1d_mlp() -> nn.Module:
    """MNIST-1D's MLP (as its paper trains it): 40 samples -> 100 -> 100 -> 10, ReLU."""
    return nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
                         nn.Linear(100, 10))


def fashion_mlp() -> nn.Module:
    """Fashion-MNIST's 784 pixels -> 128 -> 10, ReLU."""
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def logistic_regression(features: int) -> nn.Module:
    """One logit per sample: ``Linear(features, 1)``, squeezed."""
    return nn.Sequential(nn.Linear(features, 1), nn.Flatten(0))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp(self.norm2(x))


class TinyGPT(nn.Module):
    """A GPT-style character model: token + position embeddings, blocks, LayerNorm, head."""

    def __init__(self, vocabulary: int, context: int = 64, width: int = 64, layers: int = 2,
                 heads: int = 4) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocabulary, width)
        self.positions = nn.Embedding(context, width)
        self.blocks = nn.Sequential(*(Block(width, heads) for _ in range(layers)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocabulary)

    def forward(self, ids: Tensor) -> Tensor:
        """Logits of the next character at every position: (batch, length, vocabulary)."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.tokens(ids) + self.positions(positions)
        return self.head(self.norm(self.blocks(x)))
