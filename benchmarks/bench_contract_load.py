"""Contract load time against the number of properties: ``load_contract``, ``lint_contract`` and compile.

Run: ``.venv/bin/python benchmarks/bench_contract_load.py [--sizes 500 2000 5000] [--repeat 5] [--baseline DIR]
[--profile N]``

A generated ODCS v3.1.0 contract of N properties (one schema object) in the mix of a real feature contract:
strings with a pattern or length bounds, integers and numbers with ``logicalTypeOptions`` bounds, timestamps
with a minimum, every fourth property with a library rule (``validValues``, ``nullValues``, ``missingValues``),
every tenth a pandera ``Check`` or an ``expression`` rule, every fiftieth a SQL rule, some ``unique``,
``required`` and ``classification``; plus schema-level expression and SQL rules.

Each measurement is a fresh child process (a worker's start, a CLI run) that imports the loader, then loads the
contract ``--loads`` times, each time a new version (the text differs: nothing is taken from a cache of a text
seen before): ``import`` (s), the **first** load (``cold``: includes building the cached JSON Schema
validator: a worker's start, a CLI run), the median of the later loads (``warm``: a worker's contract upgrade),
``lint`` (``lint_contract`` then ``load_contract`` of a new version, the contract part of ``qstreams contracts
lint``, without its dry run of the rules), one ``compile_plan`` (the engine compiling the loaded contract),
then the rest of ``lint`` on the loaded contract: ``auth`` (``authoring_findings``) and ``dry`` (``dry_run``, every
rule run once on the engine; after ``compile``, so the engine's import is not in it; its findings must be the
same in every run of both trees).
With ``--baseline DIR`` (an older tree, e.g. ``git archive`` unpacked) the children of the two trees take turns,
round by round, on the same files, and the table shows both and their ratio (old / new, > 1: new is faster).
Medians over ``--repeat`` rounds. ``--profile N`` prints a cProfile of one warm load of N properties (this tree).
Run it under the shared lock: ``flock /tmp/bench.lock python benchmarks/bench_contract_load.py ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_HEAD = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:datacontract:bench:wide-{n}
name: Wide features ({n} properties)
version: 1.0.0
status: active
team:
  name: bench
  members:
    - username: owner@example.com
      role: owner
support:
  - channel: "#bench"
    url: https://example.com/bench
schema:
  - name: wide
    physicalName: features.wide.v1
    physicalType: topic
    properties:
"""


def _property(i: int) -> str:
    kind = i % 8
    lines = [f"      - name: f{i}"]
    if kind == 0:
        lines += ["        logicalType: string", "        required: true", "        logicalTypeOptions:",
                  '          pattern: "^[0-9a-f]{8}$"']  # fmt: skip
    elif kind == 1:
        lines += ["        logicalType: integer", "        physicalType: int32", "        required: true",
                  "        logicalTypeOptions:", "          minimum: 0", "          maximum: 36500"]  # fmt: skip
    elif kind == 2:
        lines += ["        logicalType: number", "        physicalType: double", "        logicalTypeOptions:",
                  "          exclusiveMinimum: 0", "          maximum: 50000"]  # fmt: skip
    elif kind == 3:
        lines += ["        logicalType: string", "        classification: pii", "        logicalTypeOptions:",
                  "          minLength: 1", "          maxLength: 64"]  # fmt: skip
    elif kind == 4:
        lines += ["        logicalType: timestamp", "        physicalType: timestamp(ms) with time zone",
                  "        logicalTypeOptions:", '          minimum: "2020-01-01T00:00:00+00:00"']  # fmt: skip
    elif kind == 5:
        lines += ["        logicalType: boolean", "        required: true"]
    elif kind == 6:
        lines += ["        logicalType: integer", "        unique: true"]
    else:
        lines += ["        logicalType: number", "        physicalType: float", "        logicalTypeOptions:",
                  "          minimum: 0", "          maximum: 1"]  # fmt: skip
    quality: list[str] = []
    if i % 4 == 0 and kind in (0, 3):
        quality += ["          - type: library", "            metric: invalidValues", "            arguments:",
                    '              validValues: ["a", "b", "c", "d"]', "            mustBe: 0"]  # fmt: skip
    elif i % 4 == 0:
        quality += ["          - type: library", "            metric: nullValues",
                    "            mustBeLessOrEqualTo: 20", "            unit: percent",
                    "            severity: warning"]  # fmt: skip
    elif i % 4 == 1 and kind not in (5,):
        quality += ["          - type: library", "            metric: missingValues", "            arguments:",
                    '              missingValues: [null]', "            mustBeLessThan: 50",
                    "            unit: percent"]  # fmt: skip
    if i % 10 == 1:
        quality += ["          - type: custom", "            engine: pandera",
                    '            implementation: "Check.in_range(0, 100000)"']  # fmt: skip
    elif i % 10 == 2:
        quality += ["          - type: custom", "            engine: expression",
                    f'            implementation: "f{i} >= 0 and f1 <= 36500"']  # fmt: skip
    if i % 50 == 7:
        quality += ["          - type: sql",
                    '            query: "SELECT COUNT(*) FROM ${object} WHERE ${property} + f1 < 0"',
                    "            mustBe: 0"]  # fmt: skip
    if quality:
        lines += ["        quality:", *quality]
    return "\n".join(lines)


def generate(n: int) -> str:
    """A valid ODCS v3.1.0 contract of ``n`` properties (n >= 10)."""
    tail = """\
    quality:
      - name: counts_consistent
        type: custom
        engine: expression
        implementation: "f1 <= f9 + 100000"
      - name: batch_not_empty
        type: library
        metric: rowCount
        mustBeGreaterThan: 0
      - name: big_share
        type: sql
        query: "SELECT 100.0 * SUM(CASE WHEN f2 > 10000 THEN 1 ELSE 0 END) / COUNT(*) FROM ${object}"
        mustBeLessThan: 5
"""
    return _HEAD.format(n=n) + "\n".join(_property(i) for i in range(n)) + "\n" + tail


_CHILD = r"""
import json, statistics, sys, time
from pathlib import Path
t0 = time.perf_counter()
from streams.contracts.loader import lint_contract, load_contract
t1 = time.perf_counter()
path, loads = Path(sys.argv[1]), int(sys.argv[2])
text = path.read_text()

def fresh(i):  # a new version of the contract (a worker's upgrade): no load is of a text read before
    p = path.with_name(f"{path.stem}.{i}.yaml")
    p.write_text(text.replace("version: 1.0.0", f"version: 1.0.{i}", 1))
    return p

times = []
for i in range(loads):
    p = fresh(i)
    s = time.perf_counter()
    c = load_contract(p)
    times.append(time.perf_counter() - s)
p = fresh(loads)
s = time.perf_counter()
findings = [f for f in lint_contract(p) if not f.note]  # what `qstreams contracts lint` does: check, then load
load_contract(p)
lint = time.perf_counter() - s
assert not findings, findings[:3]
from streams.validation.engine import compile_plan
s = time.perf_counter()
compile_plan(c)
comp = time.perf_counter() - s
from streams.lint import authoring_findings, dry_run  # the rest of `qstreams contracts lint` (streams/lint.py)
s = time.perf_counter()
authoring_findings(c)
auth = time.perf_counter() - s
s = time.perf_counter()
dry = dry_run(c)
dry_s = time.perf_counter() - s
print(json.dumps({"import": t1 - t0, "cold": times[0], "warm": statistics.median(times[1:]), "lint": lint,
                  "compile": comp, "auth": auth, "dry": dry_s, "rules": len(c.schemas[0].rules),
                  "found": [f"{f.line}: {f.message}" for f in dry], "cpu": time.process_time()}))
"""


def _child(tree: Path, path: Path, loads: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory() as tmp:  # the child's fresh versions of the contract
        copy = Path(tmp) / path.name
        copy.write_text(path.read_text())
        out = subprocess.run([sys.executable, "-c", _CHILD, str(copy), str(loads)], env=env, check=True,
                             capture_output=True, text=True, cwd=tree)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _profile(n: int) -> None:
    import cProfile
    import pstats

    sys.path.insert(0, str(ROOT))
    from streams.contracts.loader import load_contract

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"wide_{n}.odcs.yaml"
        path.write_text(generate(n))
        load_contract(path)  # warm: the validator is built
        prof = cProfile.Profile()
        prof.enable()
        load_contract(path)
        prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    pstats.Stats(prof).sort_stats("tottime").print_stats(20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000])
    ap.add_argument("--repeat", type=int, default=5, help="rounds (fresh processes) per size and tree")
    ap.add_argument("--loads", type=int, default=5, help="loads per process (the first is cold)")
    ap.add_argument("--baseline", type=Path, default=None, help="an older tree (directory) to compare against")
    ap.add_argument("--profile", type=int, default=None, metavar="N", help="cProfile one warm load of N properties")
    args = ap.parse_args()
    if args.profile is not None:
        _profile(args.profile)
        return
    trees = {"new": ROOT} | ({"old": args.baseline.resolve()} if args.baseline is not None else {})
    keys = ("import", "cold", "warm", "lint", "compile", "auth", "dry")
    print(f"{'size':>6} {'tree':>4} {'rules':>6} " + " ".join(f"{k + ' s':>9}" for k in keys))
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"wide_{n}.odcs.yaml"
            path.write_text(generate(n))
            runs: dict[str, list[dict[str, float]]] = {t: [] for t in trees}
            for _ in range(args.repeat):
                for name, tree in trees.items():  # taking turns: the same load for both
                    runs[name].append(_child(tree, path, args.loads))
            med = {t: {k: statistics.median(r[k] for r in rs) for k in keys} for t, rs in runs.items()}
            found = {t: {json.dumps(r["found"]) for r in rs} for t, rs in runs.items()}
            assert len(set.union(*found.values())) == 1, "the dry runs' findings differ between runs or trees"
            for t in trees:
                rules = int(runs[t][0]["rules"])
                print(f"{n:>6} {t:>4} {rules:>6} " + " ".join(f"{med[t][k]:>9.3f}" for k in keys))
            if "old" in med:
                ratios = " ".join(f"{med['old'][k] / med['new'][k]:>9.2f}" for k in keys)
                print(f"{n:>6} {'x':>4} {'':>6} {ratios}   (old / new)")


if __name__ == "__main__":
    main()
