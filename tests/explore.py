"""The explore switch: ``OPTIMLAB_EXPLORE=1`` (set by scripts/explore.sh) runs the full cross
products that the default run samples (every mid-run change on every engine, every
optimizer under torch.compile on every engine). The default run keeps each rule and
convention covered at least once, deterministically."""

from __future__ import annotations

import os

EXPLORE = os.environ.get("OPTIMLAB_EXPLORE", "") not in ("", "0")
