"""`make bench` (benchmarks/run.py): a --quick smoke run writes the three tables and the machine."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about 10 s of CPU; much longer on a loaded machine
def test_quick_benchmark_writes_the_tables(tmp_path):
    out = tmp_path / "results.md"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--threads", "1", "--out", str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert text.strip() in result.stdout  # printed and written
    assert "**Machine:**" in text and "cores; torch" in text and "with 1 thread;" in text
    sections = {}
    for part in text.split("\n## ")[1:]:  # one table per section, keyed by its first column
        title = part.splitlines()[0]
        rows = [[c.strip() for c in line.split("|")[1:-1]] for line in part.splitlines() if line.startswith("| ")]
        sections[title] = {row[0]: row for row in rows}
    titles = list(sections)
    assert "Training step" in titles[0] and "KV cache" in titles[1] and "naive vs fused" in titles[2], titles
    training, generation, attention = sections.values()
    # 1. training step at T = 64 (batch 12) and T = 256 (batch 6): wmbook, transformers, ratio, speed
    for T, B in (("64", "12"), ("256", "6")):
        row = training[T]
        assert row[1] == B and float(row[3]) > 0 and float(row[4]) > 0, row
        assert row[6].endswith("×") and float(row[6][:-1]) > 0, row
    # 2. generation with and without the KV cache gives the same tokens
    assert generation["16"][-1] == "yes"
    # 3. attention vs length: naive and fused agree
    for n in ("128", "256"):
        assert float(attention[n][-1]) < 1e-5, attention[n]
