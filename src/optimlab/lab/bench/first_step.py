"""The first step of an optimizer on the GPT-small-like shape, compiling included, in
fresh processes: with an empty cache ("cold") and again with the cache the first process
left ("warm"), through the compiled engine (Inductor's cache) or auto (on the CPU the
generated C kernel, optimlab.ckernel's cache)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

_PARAMS = """
import time, torch, optimlab
from optimlab.lab.bench import gpt_small_like
params = [torch.nn.Parameter(torch.randn(s) * 0.02) for s in gpt_small_like()]
for p in params:
    p.grad = torch.randn(p.shape) * 1e-3
"""
STEP = _PARAMS + """
optimizer = optimlab.{name}(params, engine="{engine}", {kwargs})
start = time.perf_counter()
optimizer.step()
print(time.perf_counter() - start)
"""


def first_step_seconds(name: str = "RMSprop", kwargs: str = "",
                       engine: str = "compiled") -> dict[str, float]:
    """Seconds of ``optimlab.<name>(params, engine=<engine>, <kwargs>)``'s first step, cold
    and warm: compiling included (``"compiled"``: Inductor; ``"auto"`` on the CPU: the
    generated C kernel's tracing, generating, building and loading)."""
    script = STEP.format(name=name, engine=engine, kwargs=kwargs)
    times = {}
    with tempfile.TemporaryDirectory() as cache:
        environment = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache,
                       "OPTIMLAB_KERNEL_CACHE": cache}
        for label in ("cold", "warm"):
            done = subprocess.run([sys.executable, "-c", script], env=environment,
                                  capture_output=True, text=True, check=True)
            times[label] = float(done.stdout.strip().splitlines()[-1])
    return times
