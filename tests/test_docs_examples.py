"""The Python examples of the README and of the getting-started page run as written, each
page's blocks in order in one namespace, as a reader would paste them. (The lab's and the
recipe's long examples have their own tests: test_docs_lab_example.py, test_recipe.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/getting-started.md"]


def python_blocks(page: Path) -> list[str]:
    """The page's ```python blocks (not those markdown-exec runs at build time)."""
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"),
                      re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_python_examples_run(page: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(ROOT / page)
    assert blocks, page
    namespace: dict = {}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"{page}, python block {number}", "exec"), namespace)
    assert namespace["loss"].item() < 2.3  # the quick start trained: chance is ln 10 ≈ 2.30
