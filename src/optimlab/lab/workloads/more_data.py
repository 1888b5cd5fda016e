"""Data of the tasks made for benchmarking, still never downloaded at run time.

* ``mnist1d``: MNIST-1D (Greydanus & Kobak, 2020): ten digit templates drawn as 1-D
  signals of length 40, shifted, scaled, sheared and noised. The ``mnist1d`` package
  *generates* it (``make_dataset``: numpy and scipy, no network): 4,000 training and
  1,000 held-out examples. Made to separate what MNIST cannot: an MLP reaches ~70%,
  a CNN ~95%, and optimizers differ too.
* ``fashion_mnist``: Zalando's Fashion-MNIST (60,000 + 10,000 28x28 grey images of ten
  kinds of clothing) read from Debian's ``dataset-fashion-mnist`` package, which
  installs the original idx files under ``/usr/share/datasets/fashion-mnist``. Where
  it is not installed the task is listed as unavailable with the command that
  installs it (``fashion_mnist_missing``).
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

import torch

from optimlab.lab.workloads.datasets import DATA_SEED, Split

FASHION_MNIST = Path(os.environ.get("OPTIMLAB_FASHION_MNIST",
                                    "/usr/share/datasets/fashion-mnist"))
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FASHION_INSTALL = "apt-get install dataset-fashion-mnist"
# held-out examples scored at each evaluation: enough for a 0.5% resolution, few enough
# that twenty evaluations cost less than the training between them
FASHION_HELDOUT = 5000


@lru_cache(maxsize=1)
def mnist1d() -> Split:
    """MNIST-1D as its authors generate it (their default arguments, seed 42).

    ``make_dataset`` seeds numpy's and Python's global generators; their states are
    put back afterwards, so that generating the data changes no one else's draws."""
    import random

    import numpy as np
    from mnist1d.data import get_dataset_args, make_dataset

    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return Split(torch.tensor(data["x"], dtype=torch.float32), torch.tensor(data["y"]),
                 torch.tensor(data["x_test"], dtype=torch.float32),
                 torch.tensor(data["y_test"]))


def fashion_mnist_missing() -> str | None:
    """Why the Fashion-MNIST task cannot run here, with the command that fixes it; None
    when its files are there."""
    absent = [name for name in FASHION_FILES if not (FASHION_MNIST / name).is_file()]
    if not absent:
        return None
    return (f"Fashion-MNIST's files are not in {FASHION_MNIST} (Debian's package "
            f"dataset-fashion-mnist installs them: {FASHION_INSTALL}; or set "
            "OPTIMLAB_FASHION_MNIST to a folder holding the four idx .gz files)")


def read_idx(path: Path) -> torch.Tensor:
    """An idx file (LeCun's MNIST format, gzipped): magic, sizes, then uint8 values."""
    raw = gzip.decompress(path.read_bytes())
    dimensions = raw[3]
    sizes = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dimensions)]
    values = torch.frombuffer(bytearray(raw[4 + 4 * dimensions:]), dtype=torch.uint8)
    return values.reshape(sizes)


@lru_cache(maxsize=1)
def fashion_mnist() -> Split:
    """Fashion-MNIST, pixels scaled to [0, 1] and flattened to 784; the held-out set is
    ``FASHION_HELDOUT`` examples of the test set, drawn with the data seed."""
    missing = fashion_mnist_missing()
    if missing:
        raise FileNotFoundError(missing)
    train_x, train_y, test_x, test_y = (read_idx(FASHION_MNIST / name)
                                        for name in FASHION_FILES)
    pick = torch.randperm(len(test_y), generator=torch.Generator().manual_seed(DATA_SEED))
    pick = pick[:FASHION_HELDOUT]
    return Split(train_x.reshape(len(train_x), -1).float() / 255, train_y.long(),
                 test_x[pick].reshape(len(pick), -1).float() / 255, test_y[pick].long())
