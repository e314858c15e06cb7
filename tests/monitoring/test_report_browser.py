"""The morning report rendered by a real browser: headless Chromium (Debian's `chromium`).

The report is written by the monitoring nodes from a small hand-made stream with a surge (so
every section has content: alerts, timelines, drift, the labelled check, the stream). Chromium
loads it twice: once to a PNG screenshot, kept in `test-artifacts/` (git-ignored) for a person to
look at, and once with `--dump-dom` after a few lines of JavaScript appended to a copy of the
page have recorded, on the `load` event, each image's decoded size and each section's content.
No DevTools protocol is needed: the verdict travels in the dumped DOM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT
from tests.monitoring.test_report import MONITORING, scored

from fastadapt.monitoring.aggregate import daily_counts
from fastadapt.pipelines.monitoring.nodes import assess_drift, check_on_labelled, detect_alerts, write_report

ARTIFACTS = REPO_ROOT / "test-artifacts"
# Runs on `load` (images decoded by then): each <img>'s natural size, and each <h2> section's text
# and images up to the next <h2>; the result goes into a <pre> that --dump-dom prints.
PROBE = """
<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(img => ({alt: img.alt, complete: img.complete,
                                                   width: img.naturalWidth, height: img.naturalHeight}));
  const sections = [...document.querySelectorAll("h2")].map(h2 => {
    let text = "", images = 0;
    for (let node = h2.nextElementSibling; node && node.tagName !== "H2"; node = node.nextElementSibling) {
      text += node.innerText || node.textContent || "";
      images += node.tagName === "IMG" ? 1 : node.querySelectorAll("img").length;
    }
    return {title: h2.textContent, chars: text.trim().length, images};
  });
  const out = document.createElement("pre");
  out.id = "fastadapt-probe";
  out.textContent = JSON.stringify({images, sections});
  document.body.appendChild(out);
});
</script>
"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed on CI (apt-get install -y chromium; `make test` does it as root)")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


def run_chromium(binary: str, *args: str) -> subprocess.CompletedProcess:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--disable-dev-shm-usage", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report_html() -> str:
    stream = scored()
    daily = daily_counts(stream, "entities", "negative")
    alerts = detect_alerts(daily, stream, MONITORING, "finance_sentiment.champion")
    drift = assess_drift(stream, MONITORING)
    check = check_on_labelled(stream, MONITORING)
    stats = {"n_items": len(stream), "model": "TfidfLogisticRegression", "seconds": 0.5, "items_per_second": 168.0,
             "labels": ["negative", "neutral", "positive"], "negative_label": "negative",
             "model_dataset": "finance_sentiment.champion",
             "registered_model": {"name": "finance_sentiment", "version": "3", "aliases": ["champion"],
                                  "model_class": "fastadapt.models.baselines.TfidfLogisticRegression"}}
    html, figures = write_report(stream, daily, alerts, drift, check, stats, MONITORING)
    assert figures, "the hand-made stream must raise an alert (so the report has timelines)"
    assert "finance_sentiment v3" in html  # the registered version that scored
    return html


def test_the_report_renders_in_chromium_with_every_image_and_section(report_html, tmp_path):
    binary = chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    page = ARTIFACTS / "report.html"
    page.write_text(report_html, encoding="utf-8")
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    shot = run_chromium(binary, f"--user-data-dir={tmp_path / 'profile-shot'}", "--window-size=1280,2400",
                        f"--screenshot={screenshot}", page.as_uri())
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    header = screenshot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (1280, 2400)

    probed = tmp_path / "probed.html"
    probed.write_text(report_html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dumped = run_chromium(binary, f"--user-data-dir={tmp_path / 'profile-dom'}", "--virtual-time-budget=10000",
                          "--dump-dom", probed.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    match = re.search(r'<pre id="fastadapt-probe">(.*?)</pre>', dumped.stdout, re.S)
    assert match, "the probe did not run: " + dumped.stdout[-2000:]
    result = json.loads(match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))

    assert len(result["images"]) == report_html.count("<img ") >= 2
    broken = [img for img in result["images"] if not img["complete"] or img["width"] < 100 or img["height"] < 50]
    assert not broken, broken
    titles = [section["title"] for section in result["sections"]]
    assert titles[0].startswith("Alerts in the last") and "The stream" in titles
    empty = [section for section in result["sections"] if section["chars"] < 20 and not section["images"]]
    assert not empty, empty
    timelines = next(s for s in result["sections"] if s["title"] == "Timelines")
    assert timelines["images"] == len(result["images"])
