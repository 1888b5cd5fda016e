"""Choosing the 8-bit codec's block size: coding error, state bytes and step time.

For each block size, in a fresh process (the compiled kernel is specialised to it):
the relative error of encoding moments that span several decades (as Adam's do), the
state bytes per parameter, and the ms/step of AdamW with 8-bit moments on 25.2M params in
one tensor, compiled, beside torch's fused fp32 AdamW.

    .venv/bin/python benchmarks/block_size.py
"""

from __future__ import annotations

import json
import subprocess
import sys

SIZES = [64, 128, 256, 512, 1024]

ONE = """
import json, statistics, time, torch, optimlab
from optimlab import codecs
codecs.BLOCK = {block}
gen = torch.Generator().manual_seed(0)
spread = torch.rand(1 << 20, generator=gen) ** 4
m = torch.randn(1 << 20, generator=gen) * spread
v = (torch.randn(1 << 20, generator=gen) * spread) ** 2
def error(storage, x, root):
    y = storage.decode(storage.encode(x), torch.float32)
    if root:
        x, y = x.sqrt(), y.sqrt()
    return ((y - x).norm() / x.norm()).item()
errors = [error(codecs.Blockwise8bit(True), m, False), error(codecs.Blockwise8bit(False), v, True)]
n = 25_200_000 // {block} * {block}
params = [torch.nn.Parameter(torch.randn(n, generator=gen) * 0.02)]
params[0].grad = torch.randn(n, generator=gen) * 1e-3
twin = [torch.nn.Parameter(params[0].detach().clone())]
twin[0].grad = params[0].grad
ours = optimlab.AdamW(params, engine="compiled", state_dtype=torch.int8)
fused = torch.optim.AdamW(twin, fused=True)
times = {{"ours": [], "fused": []}}
for optimizer in (ours, fused):
    optimizer.step()
for _ in range(8):
    for name, optimizer in (("ours", ours), ("fused", fused)):
        for _ in range(3):
            start = time.perf_counter(); optimizer.step()
            times[name].append(time.perf_counter() - start)
state = ours.state[params[0]]
stored = sum(t.numel() * t.element_size() for k, t in state.items() if k != "step")
print(json.dumps({{"errors": errors, "bytes": stored / n,
                  "ms": 1e3 * statistics.median(times["ours"]),
                  "fused_ms": 1e3 * statistics.median(times["fused"])}}))
"""


def main() -> int:
    print("| block | error of m | error of √v | state B/param | 8-bit AdamW ms | "
          "fused fp32 AdamW ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for block in SIZES:
        done = subprocess.run([sys.executable, "-c", ONE.format(block=block)],
                              capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {block} | {row['errors'][0]:.4f} | {row['errors'][1]:.4f} | "
              f"{row['bytes']:.3f} | {row['ms']:.1f} | {row['fused_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
