"""What each framework preset should set, as its framework documents it: defaults in the
framework's own words, translated by ``ours``, and conventions with the source line that
shows each (tests/test_presets.py checks optimlab's presets against them, and the
installed frameworks' signatures against the defaults)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Each preset against the framework it names: the defaults the framework documents, in
# its own words (Keras 3: keras.io/api/optimizers/<name>/ and keras/src/optimizers/<name>.py;
# optax: optax.readthedocs.io/en/latest/api/optimizers.html and optax/_src/alias.py; timm:
# timm/optim/rmsprop_tf.py), and the conventions its update equations imply, each with
# the line of source that shows it. Translated into our keywords by ``ours`` below.
KERAS = "https://github.com/keras-team/keras/blob/master/keras/src/optimizers/"
OPTAX = "https://github.com/google-deepmind/optax/blob/main/optax/_src/"
TIMM = "https://github.com/huggingface/pytorch-image-models/blob/main/timm/optim/rmsprop_tf.py"
KERAS_DECAY = ("decoupled", KERAS + "base_optimizer.py _apply_weight_decay: "
               "variable.assign(variable - variable * wd * lr), for every optimizer")


@dataclass(frozen=True)
class Documented:
    """``framework``'s defaults (its own keywords) and conventions, and where they are
    written; None where the framework has no such argument or a required one."""

    framework: str
    defaults: dict[str, Any]
    conventions: dict[str, tuple[Any, str]]  # our keyword: (value, the source that shows it)


DOCUMENTED = {
    ("SGD", "keras"): Documented(
        "keras.optimizers.SGD", {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False,
                                 "weight_decay": None},
        {"lr_in_momentum": (True, KERAS + "sgd.py: m = m * momentum - gradient * "
                                          "learning_rate; variable += m"),
         "weight_decay_form": KERAS_DECAY}),
    ("SGD", "optax"): Documented(  # learning_rate has no default
        "optax.sgd", {"momentum": None, "nesterov": False},
        {"lr_in_momentum": (False, OPTAX + "alias.py sgd: chain(trace(decay=momentum), "
                                           "scale_by_learning_rate(learning_rate))")}),
    ("Adagrad", "keras"): Documented(
        "keras.optimizers.Adagrad", {"learning_rate": 1e-3, "initial_accumulator_value": 0.1,
                                     "epsilon": 1e-7, "weight_decay": None},
        {"eps_placement": ("inside", KERAS + "adagrad.py: variable -= lr * gradient / "
                                             "sqrt(accumulator + epsilon)"),
         "weight_decay_form": KERAS_DECAY}),
    ("Adagrad", "optax"): Documented(
        "optax.adagrad", {"initial_accumulator_value": 0.1, "eps": 1e-7},
        {"eps_placement": ("inside", OPTAX + "transform.py scale_by_rss: "
                                             "updates * rsqrt(sum_of_squares + eps)")}),
    ("RMSprop", "keras"): Documented(
        "keras.optimizers.RMSprop", {"learning_rate": 1e-3, "rho": 0.9, "momentum": 0.0,
                                     "epsilon": 1e-7, "centered": False, "weight_decay": None},
        {"eps_placement": ("inside", KERAS + "rmsprop.py: increment = lr * gradient / "
                                             "sqrt(velocity + epsilon)"),
         "lr_in_momentum": (True, KERAS + "rmsprop.py: momentum = momentum * self.momentum "
                                          "+ increment; variable -= momentum"),
         "weight_decay_form": KERAS_DECAY}),
    ("RMSprop", "optax"): Documented(  # learning_rate has no default
        "optax.rmsprop", {"decay": 0.9, "eps": 1e-8, "initial_scale": 0.0,
                          "eps_in_sqrt": True, "centered": False, "momentum": None},
        {"lr_in_momentum": (True, OPTAX + "alias.py rmsprop: chain(scale_by_rms, "
                                          "scale_by_learning_rate, trace(decay=momentum))")}),
    ("RMSprop", "timm_tf"): Documented(
        "timm.optim.RMSpropTF", {"lr": 1e-2, "alpha": 0.9, "eps": 1e-10, "weight_decay": 0.0,
                                 "momentum": 0.0, "centered": False, "decoupled_decay": False,
                                 "lr_in_momentum": True},
        {"eps_placement": ("inside", TIMM + ": avg = square_avg.add(group['eps']).sqrt_()"),
         "initial_accumulator_value": (1.0, TIMM + ": state['square_avg'] = "
                                                   "torch.ones_like(p)")}),
    ("Adam", "keras"): Documented(
        "keras.optimizers.Adam", {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999,
                                  "epsilon": 1e-7, "amsgrad": False, "weight_decay": None},
        {"eps_placement": ("hat", KERAS + "adam.py: alpha = lr * sqrt(1 - beta_2_power) / "
                                          "(1 - beta_1_power); variable -= m * alpha / "
                                          "(sqrt(v) + epsilon)"),
         "weight_decay_form": KERAS_DECAY}),
    ("Adam", "optax"): Documented(  # learning_rate has no default
        "optax.adam", {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "eps_root": 0.0},
        {"eps_placement": ("outside", OPTAX + "transform.py scale_by_adam: mu_hat / "
                                              "(sqrt(nu_hat + eps_root) + eps)")}),
    ("AdamW", "keras"): Documented(
        "keras.optimizers.AdamW", {"learning_rate": 1e-3, "weight_decay": 0.004, "beta_1": 0.9,
                                   "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
        {"eps_placement": ("hat", KERAS + "adamw.py: class AdamW(adam.Adam)"),
         "weight_decay_form": KERAS_DECAY}),
    ("AdamW", "optax"): Documented(  # learning_rate has no default
        "optax.adamw", {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "eps_root": 0.0,
                        "weight_decay": 1e-4},
        {"eps_placement": ("outside", OPTAX + "transform.py scale_by_adam"),
         "weight_decay_form": ("decoupled", OPTAX + "alias.py adamw: chain(scale_by_adam, "
                                                    "add_decayed_weights(weight_decay), "
                                                    "scale_by_learning_rate)")}),
}
PRESETS = sorted(DOCUMENTED)
#: the frameworks' keywords that optimlab spells otherwise
OUR_NAMES = {"learning_rate": "lr", "rho": "alpha", "decay": "alpha", "epsilon": "eps",
             "initial_scale": "initial_accumulator_value"}


def ours(defaults: dict[str, Any]) -> dict[str, Any]:
    """A framework's defaults as optimlab's keywords and values (no argument = 0.0)."""
    ours = {}
    for key, value in defaults.items():
        if key in ("beta_1", "b1", "beta_2", "b2"):
            continue
        if key == "eps_in_sqrt":
            ours["eps_placement"] = "inside" if value else "outside"
        elif key == "decoupled_decay":
            ours["weight_decay_form"] = "decoupled" if value else "l2"
        else:
            ours[OUR_NAMES.get(key, key)] = 0.0 if value is None else value
    for first, second in (("beta_1", "beta_2"), ("b1", "b2")):
        if first in defaults:
            ours["betas"] = (defaults[first], defaults[second])
    return ours
