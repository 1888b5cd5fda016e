"""Checks shared by the lab's tests: what a run folder and its report.html must hold."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

METRICS_HEADER = ["task", "optimizer", "seed", "step", "wall_time_s", "metric", "value"]


class ReportParser(HTMLParser):
    """Collects what the tests look at: tags, links, images, table rows (all of them, and
    per table), the text of the paragraphs."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.images: list[str] = []
        self.rows: list[list[str]] = []
        self.tables: list[list[list[str]]] = []
        self.paragraphs: list[str] = []
        self.flagged_rows = 0
        self._cell: list[str] | None = None
        self._paragraph: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self.rows.append([])
            self.tables[-1].append(self.rows[-1])
            self.flagged_rows += values.get("class") == "flagged"
        if tag in ("td", "th"):
            self._cell = []
        if tag == "p":
            self._paragraph = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._paragraph is not None:
            self._paragraph.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        if tag == "p" and self._paragraph is not None:
            self.paragraphs.append("".join(self._paragraph))
            self._paragraph = None

    def column(self, table: int, name: str) -> list[str]:
        """The cells of the column headed ``name`` in table ``table``, header left out."""
        header, *rows = self.tables[table]
        return [row[header.index(name)] for row in rows]

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)


def read_report(folder: Path) -> ReportParser:
    """Parse report.html and check it is self-contained: every image is inline, every
    link names a file in the folder."""
    report = folder / "report.html"
    parser = ReportParser()
    parser.feed(report.read_text(encoding="utf-8"))
    parser.close()
    assert parser.tags[:1] == ["html"] and "body" in parser.tags and "table" in parser.tags
    assert parser.images, "the report shows no figure"
    for source in parser.images:
        assert source.startswith("data:image/"), f"image not embedded: {source[:60]}"
    for link in parser.links:
        assert (folder / link).is_file(), f"report.html links to a missing file: {link}"
    return parser


def read_metrics(folder: Path) -> list[dict[str, str]]:
    with (folder / "metrics.csv").open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == METRICS_HEADER
        return list(reader)


def read_summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def only_folder(parent: Path) -> Path:
    """The one run folder a command made under ``parent``."""
    folders = [path for path in parent.iterdir() if path.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]
