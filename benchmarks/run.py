"""The full benchmark matrix, written to benchmarks/results.md (or --out):

* every variant on the GPT-small-like shape (25.2M params in 150 tensors) and on the
  lab's char-transformer (117k params in 30 tensors);
* the fp32, bf16 and 8-bit AdamW steps and the C kernel's other optimizers on 100M params
  in 8 tensors (every variant there would hold ~15 GB of state), and the main variants on
  1M params in 2000 tensors;
* the first step (compiling included) of compiled optimizers and of the C kernel, with a
  cold and a warm cache.

Each shape runs in a process of its own, so that no shape inherits another's memory.

    .venv/bin/python benchmarks/run.py            # about 15 minutes on 2 cores
    .venv/bin/python benchmarks/run.py --quick    # the main variants, gpt-small only

The timing code is optimlab/lab/bench/ (also behind ``optimlab bench``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from optimlab.lab import bench
from optimlab.lab.bench.first_step import first_step_seconds

FIRST_STEPS = [("compiled", "RMSprop", ""), ("compiled", "Adam", "eps_placement='inside'"),
               ("compiled", "AdamW", "state_dtype=torch.int8"), ("auto", "AdamW", ""),
               ("auto", "AdamW", "state_dtype=torch.int8"), ("auto", "RMSprop", "")]
#: 100m-8: the AdamW storages and one step of each other optimizer through the kernel
BIG = ["torch AdamW fused", "optimlab AdamW auto", "optimlab AdamW bf16 moments auto",
       "optimlab AdamW 8-bit moments auto", "DeepSpeed", "optimlab RMSprop auto",
       "optimlab SGD-momentum auto", "optimlab Adagrad auto", "torch Adagrad fused",
       "torch SGD-momentum fused"]


def shape_table(shape: str, everything: bool, names: list[str] | None) -> str:
    """One shape's table, measured in a fresh process (``optimlab bench``)."""
    command = [sys.executable, "-m", "optimlab.lab.commands.cli", "bench", "--shapes", shape]
    if everything:
        command.append("--all")
    if names:
        command += ["--variants", *names]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    print(done.stderr, file=sys.stderr, end="")
    report = done.stdout.strip().split("\n\n", 1)
    return report[1] if len(report) > 1 else report[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="main variants, gpt-small")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.md"))
    arguments = parser.parse_args()
    plan: list[tuple[str, bool, list[str] | None]] = [
        ("gpt-small", not arguments.quick, None)]
    if not arguments.quick:
        plan += [("char-transformer", True, None), ("100m-8", False, BIG),
                 ("1m-2000", False, None)]
    lines = [bench.header(bench.bandwidth()), ""]
    lines += [shape_table(*entry) + "\n" for entry in plan]
    lines += ["First step (gpt-small, compiling included):", "",
              "| engine | optimizer | cold cache s | warm cache s |",
              "| --- | --- | --- | --- |"]
    for engine, name, kwargs in FIRST_STEPS if not arguments.quick else []:
        times = first_step_seconds(name, kwargs, engine)
        lines.append(f"| {engine} | {name}({kwargs}) | {times['cold']:.2f} | "
                     f"{times['warm']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    arguments.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
