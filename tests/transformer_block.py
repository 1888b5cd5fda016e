"""A small hand-written decoder-only transformer, HuggingFace-style, for the recipe tests.

Its norm is a custom class (``ScaleNorm``, as ``LlamaRMSNorm`` or ``T5LayerNorm`` are), its
position embedding a bare ``nn.Parameter``, its output head tied to the token embedding.
The task: continue sequences x_{t+1} = (a·x_t + b) mod V, a rule each sequence shares with
the whole data set, so a model that learns it drives the loss towards 0 from ln V.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional


class ScaleNorm(nn.Module):
    """RMS norm with a learned gain, under a name no list of norm classes knows."""

    def __init__(self, width: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.gain


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))
        self.out = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape

        def split(t: Tensor) -> Tensor:
            return t.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

        mixed = functional.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)), is_causal=True)
        return self.out(mixed.transpose(1, 2).reshape(batch, length, width))


class Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn_norm = ScaleNorm(width)
        self.attn = SelfAttention(width, heads)
        self.mlp_norm = ScaleNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class TinyLM(nn.Module):
    def __init__(self, vocab: int = 16, width: int = 32, heads: int = 4, depth: int = 2,
                 length: int = 12) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        nn.init.normal_(self.embed.weight, std=0.02)  # GPT-2's init: logits start near 0
        self.pos_embed = nn.Parameter(0.02 * torch.randn(length, width))
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.final_norm = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.embed.weight  # tied, as in GPT-2

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens) + self.pos_embed[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.final_norm(x))

    def loss(self, tokens: Tensor) -> Tensor:
        """Mean next-token cross-entropy."""
        logits = self(tokens[:, :-1])
        return functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())


def sequences(count: int, vocab: int = 16, length: int = 13, seed: int = 0) -> Tensor:
    """``count`` sequences x_{t+1} = (5·x_t + 3) mod vocab from random starts."""
    generator = torch.Generator().manual_seed(seed)
    tokens = [torch.randint(0, vocab, (count,), generator=generator)]
    for _ in range(length - 1):
        tokens.append((5 * tokens[-1] + 3) % vocab)
    return torch.stack(tokens, dim=1)
