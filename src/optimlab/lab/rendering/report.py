"""The run folder: report.html (self-contained), the figures' PNGs, metrics.csv, summary.json.

``report.html`` embeds every image as a data URI and needs no network and no other file;
the PNGs, metrics.csv and summary.json sit beside it for users' own tools, and the report
links to them.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import platform
import re
import time
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import torch

import optimlab
from optimlab.lab.analysis.tables import Table
from optimlab.lab.running.records import Run


class OutputError(OSError):
    """The output folder cannot be created or written."""


@dataclass
class Picture:
    """A figure as the report shows it: file stem, heading, caption, PNG (or GIF) bytes."""

    name: str
    title: str
    caption: str
    data: bytes
    kind: str = "png"


@dataclass
class Page:
    """Everything report.html shows, in order."""

    title: str
    lead: list[str]
    tables: list[Table]
    pictures: list[Picture]
    facts: list[tuple[str, str]]
    files: list[str] = field(default_factory=list)


def new_run_folder(out: str | Path, name: str) -> Path:
    """Create ``out/<timestamp>-<name>/`` (``-2``, ``-3``... if taken: never overwrite) and
    check that it can be written; OutputError, naming the folder, if not."""
    root = Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
    try:
        root.mkdir(parents=True, exist_ok=True)
        for attempt in count(1):
            folder = root / (f"{stamp}-{safe}" + ("" if attempt == 1 else f"-{attempt}"))
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
        probe = folder / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise OutputError(f"cannot write the output folder {root}: "
                          f"{error.strerror or error}") from None
    return folder


def data_uri(picture: Picture) -> str:
    encoded = base64.b64encode(picture.data).decode("ascii")
    return f"data:image/{picture.kind};base64,{encoded}"


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child, td.text, th.text { text-align: left; }
tr.flagged td { background: #fde8e8; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; }
figcaption, .caption { color: #555; font-size: 0.9em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: 600; } dd { margin: 0; }
"""


def is_text(cell: str) -> bool:
    """Words, not a number: left-aligned (numbers align right, the table's default)."""
    return re.match(r"^[\d—−+.-]", cell) is None


def cell_html(cell: str, tag: str = "td", text: bool | None = None) -> str:
    text = is_text(cell) if text is None else text
    return f"<{tag} class=\"text\">{html.escape(cell)}</{tag}>" if text else \
        f"<{tag}>{html.escape(cell)}</{tag}>"


def table_html(table: Table) -> str:
    # a header is aligned as its column's first cell
    first = table.rows[0] if table.rows else table.header
    head = "".join(cell_html(cell, "th", is_text(below))
                   for cell, below in zip(table.header, first, strict=True))
    body = "".join(
        ("<tr class=\"flagged\">" if flag else "<tr>")
        + "".join(cell_html(cell) for cell in row) + "</tr>"
        for row, flag in zip(table.rows, table.flagged, strict=True))
    title = f"<h3>{html.escape(table.title)}</h3>" if table.title else ""
    return (f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<p class=\"caption\">{html.escape(table.caption)}</p>")


def picture_html(picture: Picture) -> str:
    return (f"<figure id=\"{picture.name}\"><h3>{html.escape(picture.title)}</h3>"
            f"<img src=\"{data_uri(picture)}\" alt=\"{html.escape(picture.title)}\">"
            f"<figcaption>{html.escape(picture.caption)} "
            f"(<a href=\"{picture.name}.{picture.kind}\">{picture.name}.{picture.kind}</a>)"
            f"</figcaption></figure>")


def render(page: Page) -> str:
    """The page as one HTML document; images inline, nothing fetched."""
    lead = "".join(f"<p>{html.escape(line)}</p>" for line in page.lead)
    tables = "".join(table_html(table) for table in page.tables)
    pictures = "".join(picture_html(picture) for picture in page.pictures)
    facts = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
                    for k, v in page.facts)
    files = " · ".join(f"<a href=\"{name}\">{name}</a>" for name in page.files)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(page.title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(page.title)}</h1>{lead}<h2>Summary</h2>{tables}"
            f"<h2>Figures</h2>{pictures}<h2>Settings</h2><dl>{facts}</dl>"
            f"<h2>Files</h2><p>{files}</p></body></html>\n")


def write_page(folder: Path, page: Page) -> Path:
    """Write each picture's file and report.html; returns the folder."""
    for picture in page.pictures:
        (folder / f"{picture.name}.{picture.kind}").write_bytes(picture.data)
    page.files = [*page.files, *(f"{p.name}.{p.kind}" for p in page.pictures)]
    (folder / "report.html").write_text(render(page), encoding="utf-8")
    return folder


def write_metrics(path: Path, runs: list[Run]) -> None:
    """metrics.csv, long format: one row per (run, step, metric)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "optimizer", "seed", "step", "wall_time_s", "metric", "value"])
        for run in runs:
            for record in run.records:
                writer.writerow([run.task, run.optimizer, run.seed, record.step,
                                 f"{record.wall_time:.6f}", record.metric, repr(record.value)])


def write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2, default=str) + "\n", encoding="utf-8")


def environment_facts(threads: int | None = None) -> list[tuple[str, str]]:
    """Versions and machine; ``threads``: torch's threads while training (default: now)."""
    return [("optimlab", optimlab.__version__), ("torch", torch.__version__),
            ("python", platform.python_version()), ("machine", platform.machine()),
            ("torch threads", str(threads or torch.get_num_threads())),
            ("written", time.strftime("%Y-%m-%d %H:%M:%S"))]
