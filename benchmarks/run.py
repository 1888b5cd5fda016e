"""The full benchmark matrix, written to benchmarks/results.md:

* every variant on the GPT-small-like shape (25.2M params in 150 tensors);
* the main variants on 100M params in 8 tensors and on 1M params in 2000 tensors (every
  variant on 100M would hold ~15 GB of state);
* the first step of compiled optimizers with a cold and a warm Inductor cache.

Each shape runs in a process of its own, so that no shape inherits another's memory.

    .venv/bin/python benchmarks/run.py            # about 10 minutes on 2 cores
    .venv/bin/python benchmarks/run.py --quick    # the main variants, gpt-small only

The timing code is optimlab/lab/bench.py (also behind ``optimlab bench``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from optimlab.lab import bench

FIRST_STEPS = [("RMSprop", ""), ("Adam", "eps_placement='inside'"),
               ("AdamW", "state_dtype=torch.int8")]


def shape_table(shape: str, everything: bool) -> str:
    """One shape's table, measured in a fresh process (``optimlab bench``)."""
    command = [sys.executable, "-m", "optimlab.lab.cli", "bench", "--shapes", shape]
    if everything:
        command.append("--all")
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    print(done.stderr, file=sys.stderr, end="")
    report = done.stdout.strip().split("\n\n", 1)
    return report[1] if len(report) > 1 else report[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="main variants, gpt-small")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.md"))
    arguments = parser.parse_args()
    plan = [("gpt-small", not arguments.quick)]
    if not arguments.quick:
        plan += [("100m-8", False), ("1m-2000", False)]
    lines = [bench.header(bench.bandwidth()), ""]
    lines += [shape_table(shape, everything) + "\n" for shape, everything in plan]
    lines += ["First step of a compiled optimizer (gpt-small, compile included):", "",
              "| optimizer | cold cache s | warm cache s |", "| --- | --- | --- |"]
    for name, kwargs in FIRST_STEPS:
        times = bench.first_step_seconds(name, kwargs)
        lines.append(f"| {name}({kwargs}) | {times['cold']:.2f} | {times['warm']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    arguments.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
