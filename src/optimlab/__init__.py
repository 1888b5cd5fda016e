"""optimlab: adaptive optimizers for PyTorch, exact to the equation.

    import optimlab
    optimizer = optimlab.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)

The optimizers are torch.optim.Optimizer subclasses with torch's names and keywords,
plus the conventions on which the seeds and frameworks disagree, as options. Every class
that ``optimlab.optimizers`` exports is exported here too (one list: its ``__all__``).
"""

from optimlab import optimizers, porting, registry, schedules
from optimlab.clipping import clip_grad_norm
from optimlab.grouping import param_groups, param_groups_summary
from optimlab.hyperparameters import ArgumentError
from optimlab.optimizer import Optimizer
from optimlab.optimizers import *  # noqa: F403 (the classes, listed once in their __all__)
from optimlab.recipes import recipe

__all__ = [*optimizers.__all__, "ArgumentError", "Optimizer", "clip_grad_norm",
           "param_groups", "param_groups_summary", "porting", "recipe", "registry",
           "schedules"]
__version__ = "0.1.0"
