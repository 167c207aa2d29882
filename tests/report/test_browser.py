"""report.html and sweep.html as a user sees them: rendered by a real headless browser (Debian's
chromium), every section non-empty, every plot decoded, the flash figure the same wherever the page
states it and equal to avr-size of the ELF. Slow (two builds and a browser): `pytest -m slow`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest
from edgebuild_testlib import TINY, recipe_dir

import edgebuild

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="a headless browser is needed: apt-get install chromium"),
    pytest.mark.skipif(not shutil.which("avr-gcc"), reason="avr-gcc is needed (./install.sh installs it)"),
]


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           *args], capture_output=True, text=True, timeout=120, check=True)


class Sections(HTMLParser):
    """The rendered DOM split at each <h2>: heading -> (text, decoded image sizes)."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self._cur = None
        self._in_h2 = False
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("style", "script", "title"):
            self._skip += 1
        elif tag == "h2":
            self._in_h2, self._cur = True, ""
        elif tag == "img" and self._cur is not None:
            self.sections[self._cur]["images"].append(a.get("src", ""))
            self.sections[self._cur]["text"] += f" [{a.get('alt', '')}] "

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._skip -= 1
        elif tag == "h2":
            self._in_h2 = False
            self.sections[self._cur] = {"text": "", "images": []}

    def handle_data(self, data):
        if self._skip:
            return
        if self._in_h2:
            self._cur += data.strip()
        elif self._cur in self.sections:
            self.sections[self._cur]["text"] += data + " "


def rendered_sections(page: Path) -> dict[str, dict]:
    dom = chromium("--dump-dom", page.resolve().as_uri()).stdout
    assert "<h2" in dom, dom[:500]
    p = Sections()
    p.feed(dom)
    return p.sections


def assert_no_empty_section(sections: dict[str, dict], page: Path):
    assert sections, f"{page}: no sections rendered"
    for name, s in sections.items():
        body = re.sub(r"\s+", " ", s["text"]).strip()
        assert body.strip("— -") or s["images"], f"{page}: section {name!r} is empty"


def decoded_images(srcs: list[str]):
    import base64

    from PIL import Image

    for src in srcs:
        assert src.startswith("data:image/png;base64,"), src[:60]
        img = Image.open(BytesIO(base64.b64decode(src.split(",", 1)[1])))
        img.load()
        yield img


def assert_screenshot_has_content(page: Path, out: Path):
    from PIL import Image, ImageStat

    chromium(f"--screenshot={out}", "--window-size=1100,2400", page.resolve().as_uri())
    img = Image.open(out).convert("L")
    assert img.size == (1100, 2400)
    assert ImageStat.Stat(img).stddev[0] > 10, f"{page} renders blank"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = recipe_dir(tmp_path_factory, "browser", {"tiny": TINY})
    r = edgebuild.build(work / "recipes" / "tiny.yaml", ["verify.samples=20"], cache=work / "cache",
                        build_dir=work / "build" / "tiny")
    s = edgebuild.sweep(work / "recipes" / "tiny.yaml", ["verify.samples=10,20"], cache=work / "cache",
                        build_dir=work / "build" / "sweep")
    return work, r, s


def test_report_page_sections_plots_and_flash_agree(built, tmp_path):
    work, r, _ = built
    sections = rendered_sections(r.html)
    assert_no_empty_section(sections, r.html)
    for name in ("Accuracy", "Memory", "Layers", "Build stages", "Verification"):
        assert name in sections, name
    stages = sections["Build stages"]["text"]
    for rule in r.stages:
        assert rule in stages, rule
    images = [img for s in sections.values() for img in decoded_images(s["images"])]
    assert len(images) >= 2 and all(min(img.size) > 100 for img in images)
    # One flash figure on the whole page, and it is what the linker put in .text + .data.
    size = subprocess.run(["avr-size", "-A", str(r.elf)], capture_output=True, text=True, check=True).stdout
    text_data = sum(int(m[2]) for m in re.finditer(r"^\.(text|data)\s+(\d+)", size, re.M))
    assert r.memory.flash_bytes == text_data
    page_text = re.sub(r"\s+", " ", " ".join(s["text"] for s in sections.values()))
    limit = f"{r.memory.flash_limit:,}"
    in_table = re.findall(rf"flash \([^)]*\) ([\d,]+) {limit}", page_text)
    in_map = re.findall(rf"flash: ([\d,]+) of {limit} bytes", page_text)
    assert in_table and in_map, page_text[:2000]
    assert {int(x.replace(",", "")) for x in in_table + in_map} == {text_data}
    assert_screenshot_has_content(r.html, tmp_path / "report.png")


def test_sweep_page_sections_and_points(built, tmp_path):
    _, _, s = built
    page = s.paths["html"]
    sections = rendered_sections(page)
    assert_no_empty_section(sections, page)
    assert {"Pareto front", "Points"} <= set(sections)
    points = sections["Points"]["text"]
    for row in s.rows:
        assert row["status"] == "ok" and f"{row['flash_bytes']:,}" in points
    assert [img.size for img in decoded_images(sections["Pareto front"]["images"])]
    assert_screenshot_has_content(page, tmp_path / "sweep.png")
    # Each point's own report page is complete too (its stages were filled by the same driver).
    for row in s.rows:
        point_page = s.report(row["point"]).html
        assert_no_empty_section(rendered_sections(point_page), point_page)
