"""Terminology with shipped expansions: start-up cost and the cost of matching one code.

    python -m bench.terminology_bench [--rounds 5]

- cold load: a fresh interpreter that imports fhir_profiles.terminology and reads every ValueSet
  file with its expansion (what the service pays once at start-up), median of ``rounds`` processes;
- engine start-up: a fresh interpreter building the engine (rules proven on their cases), for scale;
- compile: ``_build`` of the folder in this process (JSON parsing + dict building only);
- matching: ``concepts_of`` per code, first look-up (dict lookups, ICD-10 ancestors, no memo) and
  repeated look-up (the memo); baseline in the same run: one plain ``dict.get``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fhir_profiles.terminology import DEFAULT_DIRECTORY, ICD10, ICD10CM, SNOMED, _build

LOINC = "http://loinc.org"
SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
# A realistic mix: hits in SNOMED CT, ICD-10-CM (with subcodes), WHO ICD-10, LOINC and misses.
CODES = [
    (SNOMED, "353431000119107"),
    (SNOMED, "94222008"),
    (SNOMED, "38341003"),  # hypertension: a miss
    (ICD10CM, "C50.912"),
    (ICD10CM, "M54.50"),
    (ICD10CM, "I10"),  # a miss
    (ICD10, "C79.5"),
    (LOINC, "89243-0"),
    (LOINC, "8867-4"),  # heart rate: a miss
    (SF, "radicular-pain"),
]


def cold_load_seconds(rounds: int) -> list[float]:
    script = (
        "import time; t = time.perf_counter(); "
        "from fhir_profiles.terminology import load_terminology; load_terminology(); "
        "print(time.perf_counter() - t)"
    )
    times = []
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip()))
    return times


def startup_seconds(rounds: int) -> list[float]:
    """The whole engine start-up in a fresh interpreter: rules compiled and proven on their cases
    (which derive facts, so the terminology and the profiles are loaded too)."""
    script = (
        "import time; t = time.perf_counter(); "
        "from engine.api import get_engine; get_engine(); "
        "from fhir_profiles.profile_checks import load_profiles; load_profiles(); "
        "print(time.perf_counter() - t)"
    )
    times = []
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def compile_seconds(rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        _build(Path(DEFAULT_DIRECTORY))
        times.append(time.perf_counter() - start)
    return times


def match_ns(repeat: int = 20_000) -> tuple[float, float, float]:
    """(first look-up, memoised look-up, plain dict.get) in ns per code."""
    term = _build(Path(DEFAULT_DIRECTORY))
    first = []
    for _ in range(200):
        term._memo.clear()  # every round starts cold: the dict work, not the memo, is measured
        start = time.perf_counter_ns()
        for system, code in CODES:
            term.concepts_of(system, code)
        first.append((time.perf_counter_ns() - start) / len(CODES))
    start = time.perf_counter_ns()
    for _ in range(repeat):
        for system, code in CODES:
            term.concepts_of(system, code)
    memo = (time.perf_counter_ns() - start) / (repeat * len(CODES))
    plain = {pair: frozenset({"x"}) for pair in CODES}
    start = time.perf_counter_ns()
    for _ in range(repeat):
        for pair in CODES:
            plain.get(pair)
    base = (time.perf_counter_ns() - start) / (repeat * len(CODES))
    return statistics.median(first), memo, base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.terminology_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    term = _build(Path(DEFAULT_DIRECTORY))
    codes = sum(len(v) for v in term._explicit.values())
    print(f"ValueSets: {len(term.sources)}, expansion entries: {codes}, distinct codes: {len(term._exact)}")
    cold = cold_load_seconds(args.rounds)
    print(
        f"cold load (fresh interpreter, import + read + compile): median {statistics.median(cold) * 1000:.0f} ms, "
        f"max {max(cold) * 1000:.0f} ms (target < 3000 ms)"
    )
    startup = startup_seconds(max(1, args.rounds // 2))
    print(f"engine start-up with rule cases (fresh interpreter): median {statistics.median(startup) * 1000:.0f} ms")
    compiled = compile_seconds(args.rounds)
    print(f"compile in process: median {statistics.median(compiled) * 1000:.0f} ms")
    first, memo, base = match_ns()
    print(f"match one code: first look-up {first:.0f} ns, memoised {memo:.0f} ns; plain dict.get {base:.0f} ns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
