"""The HTML report of a real sweep, opened in headless Chromium: tables and images render."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from twin_traffic.metrics import METRICS
from twin_traffic.sweep import load_sweep, run_sweep

SWEEP = """
scenarios = ["single", "mixed"]
seeds = [0, 1]
end = 120

[[controllers]]
name = "fixed"

[[controllers]]
name = "actuated"
"""

# Appended to a copy of the report (the report itself has no scripts): once the page has
# loaded, write what the browser made of the images and tables into the DOM.
PROBE = """<script>
window.addEventListener("load", () => {
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({
    images: [...document.images].map((i) => [i.complete, i.naturalWidth, i.naturalHeight]),
    tables: [...document.querySelectorAll("table")].map((t) => t.rows.length),
  });
  document.body.appendChild(probe);
});
</script>
"""


def chromium() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("Chromium not found at /usr/bin/chromium; install it: apt-get install chromium")


def test_the_html_report_renders_its_tables_and_images(tmp_path: Path) -> None:
    browser = chromium()
    (tmp_path / "two.toml").write_text(SWEEP)
    result = run_sweep(load_sweep(tmp_path / "two.toml"), tmp_path / "runs", workers=2)
    assert len(result.ok) == 8
    report = tmp_path / "report.html"
    compare = subprocess.run(
        [sys.executable, "-m", "twin_traffic.cli", "compare", str(tmp_path / "runs"),
         "--html", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert compare.returncode == 0, compare.stderr
    page = report.read_text()
    assert "<script" not in page and "http" not in page  # self-contained
    assert "co2_kg" not in page  # not measured (no emissions), left out as in the terminal
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"))

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        dom = subprocess.run(
            [
                browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                "--virtual-time-budget=10000", "--dump-dom", probed.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert match, "the page never finished loading in Chromium"
    probe = json.loads(html.unescape(match.group(1)))
    # Three plots, each decoded by the browser to a real bitmap.
    assert len(probe["images"]) == 3
    for complete, width, height in probe["images"]:
        assert complete and width > 300 and height > 200
    # One table per scenario: a header row and a row per metric measured (not emissions).
    assert probe["tables"] == [1 + len(METRICS) - 2] * 2
    for heading in ("<h2>single</h2>", "<h2>mixed</h2>", "actuated vs fixed", "delay"):
        assert heading in dom.stdout
