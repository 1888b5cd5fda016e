"""SGD, Adagrad, RMSprop, Adam, AdamW, Adafactor and Muon: drop-in replacements for
torch.optim's.

Each accepts every keyword its torch.optim namesake accepts (torch 2.13), in the same
positions, with the same meaning and default, plus the convention options of the seeds.
A keyword left at ``None`` takes the preset's default; ``preset="torch"`` (the default)
gives torch.optim's defaults, ``"keras"`` Keras 3's, ``"optax"`` optax's
and, for RMSprop, ``"timm_tf"`` timm's RMSpropTF: each preset sets that framework's
conventions (where ε goes, where the lr meets the momentum, how weight decay acts, what
the accumulators start at) and its default numbers. Where a framework has no default
(optax's learning rate), torch's is kept. Explicit keywords override the preset.
``foreach``, ``fused`` and ``capturable`` choose how torch.optim runs its step, never
its math: optimlab accepts them, keeps them in the param groups (so checkpoints load both
ways) and runs its own engine.
"""

from optimlab.optimizers.adafactor import Adafactor
from optimlab.optimizers.adagrad import Adagrad
from optimlab.optimizers.adam import Adam, AdamW
from optimlab.optimizers.muon import Muon
from optimlab.optimizers.rmsprop import RMSprop
from optimlab.optimizers.sgd import SGD

__all__ = ["SGD", "Adafactor", "Adagrad", "Adam", "AdamW", "Muon", "RMSprop"]
