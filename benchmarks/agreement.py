"""How closely the generated C kernels follow the rules run eagerly: the measured
differences behind tests/test_ckernel.py's tolerances.

For every registry configuration, param dtype and storage of the tests (same sizes, three
steps, each step started from the same values), the largest difference of params and float
states in units of the output dtype's epsilon times (|before| + |after|), the fraction of
elements that differ at all, and the fraction of 8-bit codes that differ (by one).

    .venv/bin/python benchmarks/agreement.py [--seed N]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import test_ckernel as checks  # the tests' own setup


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    worst: dict[tuple, float] = defaultdict(float)
    differing: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for n, (case, dtype, storage) in enumerate(checks.PARAMS):
        gen = torch.Generator().manual_seed(arguments.seed + n)
        for (params, states), (eager_params, eager_states), (params0, states0) in \
                checks.run_steps(case, dtype, storage, gen):
            for i, param in enumerate(params):
                pairs = [("param", param, eager_params[i], params0[i])]
                pairs += [(name, value, eager_states[i][name], states0[i][name])
                          for name, value in states[i].items()]
                for name, a, e, b in pairs:
                    kind = "param" if name == "param" else "8-bit codes" if a.dtype in (
                        torch.int8, torch.uint8) else "8-bit scales" if name.endswith(
                        "_scale") else "float moments"
                    key = (kind, str(dtype)[6:], storage)
                    count = differing[key]
                    count[0] += int((a != e).sum())
                    count[1] += a.numel()
                    if a.is_floating_point() and a.numel():
                        scale = (b.double().abs() + e.double().abs()) * \
                            torch.finfo(a.dtype).eps + torch.finfo(a.dtype).tiny
                        ulps = ((a.double() - e.double()).abs() / scale).max().item()
                        worst[key] = max(worst[key], ulps)
    print("| output | param dtype | moments stored as | elements differing | worst, in "
          "eps·(\\|before\\| + \\|after\\|) |")
    print("| --- | --- | --- | --- | --- |")
    for key in sorted(differing):
        changed, total = differing[key]
        print(f"| {' | '.join(key)} | {changed} of {total} ({changed / total:.1e}) | "
              f"{worst.get(key, 0):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
