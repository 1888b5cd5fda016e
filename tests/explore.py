"""The explore switch: ``OPTIMLAB_TEST_MATRIX=full`` (set by scripts/explore.sh) runs the
full cross products that the default run samples: every registry case on every engine and
moment storage, every mid-run change on every engine, every optimizer under torch.compile
on every engine, every rule of the generated kernel with every storage. The default run
keeps each rule and convention covered at least once, deterministically."""

from __future__ import annotations

import os

EXPLORE = os.environ.get("OPTIMLAB_TEST_MATRIX") == "full"
