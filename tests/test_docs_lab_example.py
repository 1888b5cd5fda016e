"""The lab page's `optimlab.lab.compare` example (docs/lab.md) runs as written and writes its
report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lab_checks import only_folder, read_report

PAGE = Path(__file__).resolve().parents[1] / "docs" / "lab.md"


def lab_page_example() -> str:
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("## Your own model and data"):]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_lab_page_example_compares_your_model_and_writes_the_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(lab_page_example(), str(PAGE), "exec"), namespace)
    rows = namespace["results"].summary()
    assert [row.optimizer for row in rows] == [
        "sgd", "momentum", "adam", "adamw:lr=0.003,weight_decay=0.1"]
    assert all(row.final_mean > 0.8 for row in rows)  # chance: about 0.4
    folder = only_folder(tmp_path / "runs")
    assert folder == namespace["folder"].resolve() and folder.name.endswith("-wine-mlp")
    assert len(read_report(folder).tables[0]) == 1 + len(rows)
    assert "held-out accuracy" in capsys.readouterr().out
