"""2-D loss surfaces: where one can watch an optimizer's path.

* ``ravine``: f(x, y) = (x²/10 + 10 y²)/2, an ill-conditioned quadratic (curvatures 0.1
  and 10, condition number 100): steep across, flat along (seed 004's picture). A learning
  rate stable across the ravine crawls along it; SGD zig-zags, momentum and Adam get through.
* ``rosenbrock``: f(x, y) = (1 − x)² + 100 (y − x²)², a curved valley with its minimum at
  (1, 1), the classic test of following a bending ravine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Surface:
    """A function of two variables, its minimum, a start point and a box to draw."""

    name: str
    function: Callable[[Tensor, Tensor], Tensor]
    minimum: tuple[float, float]
    start: tuple[float, float]
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        return self.function(x, y)


def ravine(x: Tensor, y: Tensor) -> Tensor:
    """(x²/10 + 10 y²) / 2."""
    return 0.5 * (x * x / 10 + 10 * y * y)


def rosenbrock(x: Tensor, y: Tensor) -> Tensor:
    """(1 − x)² + 100 (y − x²)²."""
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


SURFACES = {
    "ravine": Surface("ravine", ravine, (0.0, 0.0), (-9.0, 1.5), (-10.0, 3.0), (-2.0, 2.0)),
    "rosenbrock": Surface("rosenbrock", rosenbrock, (1.0, 1.0), (-1.5, 2.0), (-2.0, 2.0),
                          (-1.0, 3.0)),
}


class Point(nn.Module):
    """The model of a surface problem: one 2-D parameter, the position (x, y)."""

    def __init__(self, start: Tensor) -> None:
        super().__init__()
        self.position = nn.Parameter(start.clone())


class SurfaceProblem:
    """Minimise a surface from its start point, moved by a seed-dependent jitter.

    The gradient is exact (full batch); ``jitter`` = 0 starts exactly at ``start`` (the
    trajectories' picture), otherwise each seed starts at a slightly different point so
    that seeds differ.
    """

    def __init__(self, surface: Surface, seed: int, jitter: float = 0.1) -> None:
        generator = torch.Generator().manual_seed(seed)
        start = torch.tensor(surface.start) + jitter * torch.randn(2, generator=generator)
        self.surface = surface
        self.model = Point(start)

    def next_batch(self) -> None:
        return None

    def loss(self, batch: None) -> Tensor:
        x, y = self.model.position
        return self.surface(x, y)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Distance to the minimum, and the position (x, y) for the trajectory plots."""
        position = self.model.position
        distance = torch.linalg.vector_norm(position - torch.tensor(self.surface.minimum))
        return {"distance": distance.item(), "x": position[0].item(), "y": position[1].item()}
