"""The documentation site in a real browser, offline: headless Chromium opens every built
page that has math or images and checks that the math rendered (no raw TeX left in the
visible text, no MathJax error) and that every image loaded; no page loads anything from
the network.

The site is the one ``scripts/docs.sh`` built when ``OPTIMLAB_DOCS_SITE`` names its folder
(CI sets it); otherwise the test builds it with ``mkdocs build --strict`` (the ``docs``
extra). A local server on 127.0.0.1 serves it, so that one driver page can open each page
in a frame and read what Chromium rendered; Chromium resolves no other host.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", "--virtual-time-budget=600000",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
# TeX that MathJax should have replaced: delimiters, environments, commands
RAW_TEX = re.compile(r"\\[()\[\]]|\\begin\{|\\end\{|\\(?:frac|hat|sqrt|theta|eta|lambda|"
                     r"epsilon|beta|mu|alpha|leftarrow|texttt|text|quad|lvert|rvert)\b")

# what a page would load from elsewhere: a script, an image, a frame, a stylesheet
EXTERNAL_LOAD = re.compile(r'<(?:script|img|iframe|source)\b[^>]*\bsrc="(?:https?:)?//[^"]*"'
                           r'|<link\b[^>]*\bhref="(?:https?:)?//[^"]*"')

# The driver: opens each page in a frame, waits for MathJax, reports what it sees.
DRIVER = """<!doctype html><meta charset="utf-8"><body>
<iframe id="page" style="width:1280px;height:900px"></iframe>
<pre id="report"></pre>
<script>
const pages = %s;
const report = [];
function inspect(doc, win) {
  const images = Array.from(doc.images).map(image => ({
    src: image.getAttribute("src").slice(0, 80), complete: image.complete,
    width: image.naturalWidth, height: image.naturalHeight}));
  const math = Array.from(doc.querySelectorAll(".arithmatex"));
  const unrendered = math.filter(node => !node.querySelector("mjx-container"))
                         .map(node => node.textContent.slice(0, 80));
  const errors = Array.from(doc.querySelectorAll("[data-mjx-error], mjx-merror"))
                      .map(node => node.getAttribute("data-mjx-error") || node.textContent);
  const spoken = Array.from(doc.querySelectorAll("mjx-assistive-mml"))
                      .map(node => node.textContent).filter(text => text.includes("\\\\"));
  const article = doc.querySelector("article") || doc.body;
  const visible = article.cloneNode(true);
  visible.querySelectorAll("pre, code, mjx-container, script, style")
         .forEach(node => node.remove());
  return {images, math: math.length, unrendered, errors, spoken,
          text: visible.textContent, mathjax: !!win.MathJax};
}
function next(index) {
  if (index === pages.length) {
    document.getElementById("report").textContent = JSON.stringify(report);
    return;
  }
  const frame = document.getElementById("page");
  frame.onload = function () {
    const win = frame.contentWindow;
    const ready = (win.MathJax && win.MathJax.startup && win.MathJax.startup.promise)
                  || Promise.resolve();
    ready.then(() => {
      report.push({page: pages[index], ...inspect(frame.contentDocument, win)});
      next(index + 1);
    }, error => {
      report.push({page: pages[index], failed: String(error)});
      next(index + 1);
    });
  };
  frame.src = pages[index];
}
next(0);
</script></body>"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = os.environ.get("OPTIMLAB_DOCS_SITE")
    if built:
        folder = Path(built).resolve()
        assert (folder / "index.html").is_file(), f"OPTIMLAB_DOCS_SITE={built} has no index.html"
        return folder
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (scripts/docs.sh "
                        "installs it and builds the site)")
    folder = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(folder)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return folder


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # the base class names it format
        pass


def rendered(site: Path, base: str, pages: list[str], profile: Path) -> list[dict]:
    """What Chromium rendered of each page: images, math, visible text (see DRIVER)."""
    driver = site / "_probe_driver.html"
    driver.write_text(DRIVER % json.dumps(pages), encoding="utf-8")
    try:
        done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                               f"{base}/{driver.name}"], capture_output=True, text=True,
                              timeout=600, check=False)
    finally:
        driver.unlink()
    found = re.search(r'<pre id="report">([^<]*)</pre>', done.stdout)
    assert found and found.group(1), f"no report in Chromium's DOM (exit {done.returncode}): " \
                                     f"{done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<")
                      .replace("&gt;", ">").replace("&amp;", "&"))


def test_no_page_loads_anything_from_the_network(site: Path) -> None:
    loads = []
    for path in sorted(site.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        loads += [f"{path.relative_to(site)}: {found.group(0)[:120]}"
                  for found in EXTERNAL_LOAD.finditer(text)]
    assert not loads, "\n".join(loads)


def pages_to_render(site: Path) -> list[str]:
    """The pages with math (arithmatex) or an image; the others have nothing to render."""
    chosen = []
    for path in sorted(site.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        if path.name != "404.html" and ('class="arithmatex"' in text or "<img" in text):
            chosen.append(str(path.relative_to(site)))
    return chosen


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get "
                    "install chromium; .ci/run installs it)")
def test_every_page_renders_its_math_and_images_offline(site: Path, served: str,
                                                        tmp_path: Path) -> None:
    pages = pages_to_render(site)
    assert len(pages) >= 12, pages
    reports = rendered(site, served, pages, tmp_path / "chromium-profile")
    assert [report["page"] for report in reports] == pages
    problems = []
    for report in reports:
        page = report["page"]
        if "failed" in report:
            problems.append(f"{page}: {report['failed']}")
            continue
        if not report["mathjax"]:
            problems.append(f"{page}: MathJax did not load")
        for image in report["images"]:
            if not (image["complete"] and image["width"] > 0 and image["height"] > 0):
                problems.append(f"{page}: image not loaded: {image}")
        problems += [f"{page}: math not typeset: {text!r}" for text in report["unrendered"]]
        problems += [f"{page}: MathJax error: {text!r}" for text in report["errors"]]
        problems += [f"{page}: TeX in the typeset math: {text!r}" for text in report["spoken"]]
        for raw in RAW_TEX.finditer(report["text"]):
            context = report["text"][max(0, raw.start() - 40):raw.end() + 40]
            problems.append(f"{page}: raw TeX in the visible text: {context!r}")
    assert not problems, "\n".join(problems)
    # the pages that carry the equations and the pictures have them
    by_page = {report["page"]: report for report in reports}
    for page in ("index.html", "conventions.html", "optimizers/adam.html"):
        assert by_page[page]["math"] > 0, page
    assert len(by_page["lab.html"]["images"]) >= 7
    assert len(by_page["recipe.html"]["images"]) >= 1
    assert len(by_page["conventions.html"]["images"]) >= 1


def test_pages_without_math_have_no_tex_either(site: Path) -> None:
    """The pages the browser test skips (API reference, tests) show no TeX outside code."""
    rendered_pages = set(pages_to_render(site))
    problems = []
    for path in sorted(site.rglob("*.html")):
        if str(path.relative_to(site)) in rendered_pages:
            continue
        article = re.search(r"<article.*?</article>", path.read_text(encoding="utf-8"),
                            re.DOTALL)
        text = re.sub(r"<(pre|code)\b.*?</\1>", "", article.group(0) if article else "",
                      flags=re.DOTALL)
        problems += [f"{path.relative_to(site)}: {found.group(0)!r}"
                     for found in RAW_TEX.finditer(re.sub(r"<[^>]+>", "", text))]
    assert not problems, "\n".join(problems)
