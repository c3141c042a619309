"""Every benchmark that needs no broker runs to its end with its smallest arguments (a benchmark left behind by a
refactoring fails here, not on the day someone needs its figures). No figure is checked: timings are not tests.

Each runs as its own process (as documented: ``PYTHONPATH=. python benchmarks/X.py``; some tune the collector or
load a baseline's modules, which must not leak into this process), two at a time, once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"

#: script -> its smallest runs (arguments); ``{root}``: this checkout (a ``--baseline`` compared with itself)
RUNS: dict[str, list[list[str]]] = {
    # the two longest first (each builds a 100k-row reference): two at a time, the others fill in beside them
    "bench_profile_ab.py": [["--baseline", "{root}", "--sizes", "1000", "--batches", "1", "--rounds", "1"]],
    "bench_window_profiles.py": [["--sizes", "1000", "--batches", "1"]],
    "bench_decode.py": [["--sizes", "40", "--repeat", "1"]],
    "bench_scaling.py": [
        ["--batch", "40", "--batches", "2"],
        ["--batch", "40", "--batches", "2", "--modes", "gate", "--baseline", "{root}", "--rounds", "1"],
    ],
    "bench_hotpath.py": [
        ["--batch", "40", "--batches", "2", "--mode", "gate"],
        ["--batch", "40", "--batches", "2", "--mode", "monitor", "--partitions", "2", "--stream-time"],
        ["--batch", "40", "--batches", "2", "--baseline", "{root}", "--rounds", "1"],
    ],
    "bench_engine.py": [
        ["--sizes", "100", "--shares", "0,0.01", "--repeat", "1", "--pandera-repeat", "1", "--contracts", "sensors"]
    ],
    "bench_profile.py": [["--sizes", "1000", "--repeat", "1"]],
    "bench_unique.py": [["--keys", "10000", "--batch", "1000", "--lookups", "2"]],
    "bench_stream_time.py": [["--batch", "500", "--batches", "3"]],
    "bench_performance_join.py": [["--predictions", "500", "--runs", "1"]],
    "cbpe_vs_nannyml.py": [[]],  # ours alone (NannyML runs only with --nannyml-python)
    "drift_calibration.py": [["--samples", "2", "--sizes", "200", "--skip-demo"]],
    "bench_contract_load.py": [["--sizes", "20", "--repeat", "1", "--baseline", "{root}"], ["--profile", "20"]],
}
#: scripts that need a broker (the kafka-marked tests and ``make bench-worker`` exercise their paths), and modules
NOT_RUN = {
    "bench_clients.py", "bench_low_rate.py", "bench_worker.py", "bench_slow_feed.py", "soak.py", "worker_trace.py",
    "worker_process.py",
}  # fmt: skip

CASES = [(script, args) for script, runs in RUNS.items() for args in runs]


def _run(script: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(BENCHMARKS / script), *(a.replace("{root}", str(ROOT)) for a in args)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def outcomes() -> dict[tuple[str, str], subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=2) as pool:  # two at a time: the slowest build a 100k-row reference
        done = {(s, " ".join(a)): pool.submit(_run, s, a) for s, a in CASES}
        return {key: future.result() for key, future in done.items()}


def test_every_benchmark_is_run_or_needs_a_broker() -> None:
    scripts = {p.name for p in BENCHMARKS.glob("*.py")}
    assert scripts == set(RUNS) | NOT_RUN, "a benchmark is neither run here nor listed as needing a broker"


@pytest.mark.parametrize(("script", "args"), CASES, ids=[f"{s}:{' '.join(a) or '-'}" for s, a in CASES])
def test_benchmark_runs(
    script: str, args: list[str], outcomes: dict[tuple[str, str], subprocess.CompletedProcess[str]]
) -> None:
    done = outcomes[(script, " ".join(args))]
    assert done.returncode == 0, f"{script} {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{script} printed nothing"
