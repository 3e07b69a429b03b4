"""The benchmark guard's retry rule (benchmarks/run.py ``resample``): a noisy sample under a floor is
sampled again and passes; a real regression stays under its floor in every round and still fails."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def sampler(rates: dict[str, Iterator[float]]) -> Any:
    def sample(name: str) -> dict[str, Any]:
        return {"rate": next(rates[name])}

    return sample


def test_a_noisy_sample_is_sampled_again_and_passes(bench: ModuleType) -> None:
    runs = {"baseline": [{"rate": 100.0}], "lib_pure": [{"rate": 45.0}]}  # 0.45x: one bad sample
    rates = {"baseline": iter([110.0]), "lib_pure": iter([70.0])}
    notes = bench.resample(runs, {"lib_pure": 0.5}, "baseline", sampler(rates))
    assert len(notes) == 1 and "lib_pure" in notes[0]
    assert bench.below_floor(runs, {"lib_pure": 0.5}, "baseline") == []
    assert [r["rate"] for r in runs["baseline"]] == [100.0, 110.0]  # the baseline is sampled again too


def test_a_real_regression_fails_after_every_round(bench: ModuleType) -> None:
    runs = {"baseline": [{"rate": 100.0}], "lib": [{"rate": 60.0}]}
    rounds = bench.RETRY_ROUNDS
    rates = {"baseline": iter([100.0] * rounds), "lib": iter([65.0] * rounds)}
    notes = bench.resample(runs, {"lib": 1.0}, "baseline", sampler(rates))
    assert len(notes) == rounds
    assert bench.below_floor(runs, {"lib": 1.0}, "baseline") == ["lib"]


def test_rows_above_their_floor_are_not_sampled_again(bench: ModuleType) -> None:
    runs = {"baseline": [{"rate": 100.0}], "lib": [{"rate": 180.0}], "lib_pure": [{"rate": 70.0}]}
    floors = {"lib": 1.0, "lib_pure": 0.5}
    assert bench.resample(runs, floors, "baseline", sampler({})) == []
    assert len(runs["lib"]) == 1


def test_a_failed_sample_counts_as_under_the_floor(bench: ModuleType) -> None:
    runs = {"baseline": [{"rate": 100.0}], "lib": [{"error": "exit 1"}]}
    assert bench.below_floor(runs, {"lib": 1.0}, "baseline") == ["lib"]
