"""The report in a real browser: headless Chromium renders report.html offline, and every
figure loads with a non-zero size.

The test copies the report and appends a script that, on the page's load event, writes
each image's natural size into the DOM; ``chromium --dump-dom`` prints that DOM.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from lab_checks import only_folder

from optimlab.lab.commands import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000"]
PROBE = """<script>
window.addEventListener("load", function () {
  var sizes = Array.prototype.map.call(document.images, function (image) {
    return [image.naturalWidth, image.naturalHeight];
  });
  var out = document.createElement("pre");
  out.id = "image-sizes";
  out.textContent = JSON.stringify(sizes);
  document.body.appendChild(out);
});
</script>"""


def image_sizes(report: Path, profile: Path) -> list[list[int]]:
    """Each <img>'s natural (width, height) as Chromium rendered ``report``."""
    probe = report.with_name("report-probe.html")
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                     encoding="utf-8")
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                           probe.as_uri()], capture_output=True, text=True, timeout=120,
                          check=False)
    found = re.search(r'<pre id="image-sizes">([^<]*)</pre>', done.stdout)
    assert found, f"no image sizes in Chromium's DOM (exit {done.returncode}): " \
                  f"{done.stderr[-2000:]}"
    return json.loads(found.group(1))


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get "
                    "install chromium; .ci/run installs it)")
def test_every_figure_of_the_report_loads_in_chromium(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert cli.main(["compare", "--task", "ravine", "--steps", "10", "--seeds", "2",
                     "--optimizers", "sgd", "momentum", "--no-progress",
                     "--out", str(runs)]) == 0
    folder = only_folder(runs)
    expected = len(list(folder.glob("*.png")))
    sizes = image_sizes(folder / "report.html", tmp_path / "chromium-profile")
    assert len(sizes) == expected > 0
    for width, height in sizes:
        assert width > 100 and height > 100, sizes
