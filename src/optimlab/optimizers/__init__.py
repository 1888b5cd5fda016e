"""SGD, Adagrad, RMSprop, Adam, AdamW, NAdam, RAdam, Adamax, Adadelta, Rprop, ASGD,
Adafactor and Muon: drop-in replacements for torch.optim's; Lion and LAMB as timm has
them; schedule-free AdamW and SGD as the schedulefree package has them.

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

``AdamWScheduleFree`` and ``SGDScheduleFree`` are drop-in for facebookresearch's
``schedulefree`` package instead (its keywords, defaults, group keys and state names), with
its ``train()`` and ``eval()``.
"""

from optimlab.optimizers.adafactor import Adafactor
from optimlab.optimizers.adagrad import Adagrad
from optimlab.optimizers.adam import Adam, AdamW
from optimlab.optimizers.adamax import Adadelta, Adamax
from optimlab.optimizers.lamb import Lamb
from optimlab.optimizers.lion import Lion
from optimlab.optimizers.muon import Muon
from optimlab.optimizers.nadam import NAdam, RAdam
from optimlab.optimizers.rmsprop import RMSprop
from optimlab.optimizers.rprop import ASGD, Rprop
from optimlab.optimizers.schedulefree import AdamWScheduleFree, SGDScheduleFree
from optimlab.optimizers.sgd import SGD

__all__ = ["ASGD", "SGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW",
           "AdamWScheduleFree", "Adamax", "Lamb", "Lion", "Muon", "NAdam", "RAdam",
           "RMSprop", "Rprop", "SGDScheduleFree"]
