"""optimlab: adaptive optimizers for PyTorch, exact to the equation.

    import optimlab
    optimizer = optimlab.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)

The optimizers are torch.optim.Optimizer subclasses with torch's names and keywords,
plus the conventions on which the seeds and frameworks disagree, as options.
"""

from optimlab import porting, registry, schedules
from optimlab.clipping import clip_grad_norm
from optimlab.grouping import param_groups, param_groups_summary
from optimlab.hyperparameters import ArgumentError
from optimlab.optimizer import Optimizer
from optimlab.optimizers import SGD, Adafactor, Adagrad, Adam, AdamW, Muon, RMSprop
from optimlab.recipes import recipe

__all__ = ["SGD", "Adafactor", "Adagrad", "Adam", "AdamW", "ArgumentError", "Muon",
           "Optimizer", "RMSprop",
           "clip_grad_norm", "param_groups", "param_groups_summary", "porting", "recipe",
           "registry", "schedules"]
__version__ = "0.1.0"
