"""`qstreams report` opened in a real headless browser (Debian's chromium, installed by scripts/install-chromium).

The report's own script marks ``<html data-rendered="N">`` with the number of charts laid out with a
non-empty box; the DOM chromium dumps after the load must say all four. Then a screenshot: its
pixels must hold the colours of the verdict strip (failed red, passed green) and of the heatmap.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from streams.contracts.loader import parse_contract
from streams.governance.archive import Archive
from streams.governance.report import write_report
from tests.unit.governance.scenario import scenario
from tests.unit.governance.test_archive import NOW, records
from tests.unit.policies.conftest import CONTRACT

pytestmark = pytest.mark.timeout(180)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--mute-audio",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]  # fmt: skip


def chromium() -> str:
    configured = os.environ.get("QSTREAMS_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on this machine: `scripts/install-chromium` installs Debian's chromium (make test runs "
                "it); it could not here (no apt-get, or apt-get refused), or set QSTREAMS_CHROMIUM")  # fmt: skip


def run(browser: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    command = [browser, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def pixels(png: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """(width, height, RGB of every pixel) of an 8-bit RGB or RGBA non-interlaced PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw, stride, out, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for row in range(height):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += [tuple(line[i : i + 3]) for i in range(0, stride, bpp)]
        prev = line
    return width, height, out  # type: ignore[return-value]


def test_the_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = chromium()
    contract = parse_contract(CONTRACT, path="payments.yaml")
    with Archive(tmp_path / "archive") as store:
        store.ingest(records(scenario(contract)), now=NOW)
    report = tmp_path / "report.html"
    write_report(tmp_path / "archive", report)
    url = report.as_uri()

    dom = run(browser, tmp_path, "--virtual-time-budget=5000", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-rendered="4"' in dom.stdout, "the report's charts were not laid out: " + dom.stdout[:300]
    assert "Failure rate per rule" in dom.stdout and 'data-testid="incidents"' in dom.stdout

    shot = tmp_path / "report.png"
    done = run(browser, tmp_path, "--window-size=1100,1800", f"--screenshot={shot}", url)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    width, height, rgb = pixels(shot.read_bytes())
    assert (width, height) == (1100, 1800)
    seen = set(rgb)
    red, green = (0xD6, 0x27, 0x28), (0x2E, 0x9E, 0x44)  # failed and passed windows
    assert red in seen and green in seen, "the verdict strip was not painted"
    assert sum(1 for p in rgb if p == red) > 9 * 200  # nine failed windows, each a block of pixels
    assert len(seen) > 50, "the screenshot is (nearly) blank"
    print(f"\nscreenshot {shot} ({width}x{height}, {len(seen)} colours)")
