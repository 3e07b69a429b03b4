"""The benchmark harness for ``run.py``: scenario and server processes, best-of and resampling, the
table's formatting, the comparison clients and the real Asterisk. ``run.py`` holds the sections and the
checks."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_DIR, ROOT, SECRET, USERNAME, VENDOR_DIR

PYTHON = sys.executable
SCENARIOS = BENCH_DIR / "scenarios.py"
PANORAMISK_DIR = VENDOR_DIR / "panoramisk"
PYPI_AMI_DIR = VENDOR_DIR / "pypi-asterisk-ami"
COMPARISONS = {"panoramisk": ("panoramisk==1.4", PANORAMISK_DIR), "pypi_ami": ("asterisk-ami==0.1.7", PYPI_AMI_DIR)}
#: node clients (benchmarks/node_client.js), installed with npm into NODE_DIR by --install-comparisons
NODE_DIR = VENDOR_DIR / "node"
NODE_COMPARISONS = {"node_ami": "asterisk-ami@0.1.0", "node_manager": "asterisk-manager@0.2.0"}
SANDBOX = ROOT / "scripts" / "asterisk-sandbox"
SANDBOX_STATE = ROOT / ".cache" / "asterisk" / "bench"
SCENARIO_TIMEOUT = 600.0

# --check: a ratio row under its floor is sampled again, interleaved with its baseline, up to this many
# rounds, and its best sample counts: a real regression stays under in every round, noise does not
RETRY_ROUNDS = 4


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Row:
    scenario: str
    result: str
    ratio: str
    peak_rss_mb: float | None
    data: dict[str, Any] = field(default_factory=dict)


# -- processes ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def server(script: str, *args: str) -> Iterator[int]:
    """Start a server script of this folder; yields its port; kills it (by pid) on exit."""
    proc = subprocess.Popen(
        [PYTHON, str(BENCH_DIR / script), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"{script} did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        proc.kill()
        proc.wait(10)


PURE_ENV = {"ASTERISK_AMI_PURE_PYTHON": "1"}  # the library without its C fast path


def run_scenario(name: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one scenario in a fresh process; returns its RESULT dict (``error`` set when it failed)."""
    return run_command([PYTHON, str(SCENARIOS), name, *args], env)


def run_node(name: str, port: int, events: int) -> dict[str, Any]:
    """A node comparison client against the firehose (benchmarks/node_client.js)."""
    package = NODE_COMPARISONS[name].rsplit("@", 1)[0]
    cmd = ["node", str(BENCH_DIR / "node_client.js"), package, str(port), str(events), USERNAME, SECRET]
    return run_command(cmd, {"NODE_PATH": str(NODE_DIR / "node_modules")})


def run_command(cmd: list[str], env: dict[str, str] | None) -> dict[str, Any]:
    full_env = {k: v for k, v in os.environ.items() if k != "ASTERISK_AMI_PURE_PYTHON"} | (env or {})
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    try:
        out, err = proc.communicate(timeout=SCENARIO_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return {"error": f"timed out after {SCENARIO_TIMEOUT:.0f} s"}
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    tail = (err.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail}"}


def best_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the highest rate (least disturbed by the machine); keeps every rate in ``runs``."""
    good = [r for r in results if "error" not in r]
    if not good:
        return results[-1]
    best = dict(max(good, key=lambda r: float(r["rate"])))
    best["runs"] = [r.get("rate") for r in results]
    return best


def below_floor(runs: dict[str, list[dict[str, Any]]], floors: dict[str, float], base: str) -> list[str]:
    """The rows of ``floors`` whose best rate is under their floor times the best baseline rate."""
    base_rate = float(best_of(runs[base]).get("rate") or 0.0)
    return [
        name
        for name, floor in floors.items()
        if name in runs and not (base_rate and float(best_of(runs[name]).get("rate") or 0.0) / base_rate >= floor)
    ]


def resample(
    runs: dict[str, list[dict[str, Any]]],
    floors: dict[str, float],
    base: str,
    sample: Callable[[str], dict[str, Any]],
) -> list[str]:
    """--check: sample the rows under their floor again, each round interleaved with a new baseline
    sample, until none is under or RETRY_ROUNDS rounds are done. Returns a note per round."""
    notes = []
    for round_ in range(1, RETRY_ROUNDS + 1):
        failing = below_floor(runs, floors, base)
        if not failing:
            break
        note = f"--check: {', '.join(failing)} under the floor; sampled again with {base} (round {round_})"
        log(note)
        notes.append(note)
        for name in (base, *failing):
            runs[name].append(sample(name))
    return notes


# -- formatting ----------------------------------------------------------------------------------------------


def fmt_rate(rate: float) -> str:
    return f"{rate:,.0f} events/s"


def fmt_ratio(value: float, base: float, label: str = "") -> str:
    if not base:
        return "-"
    return f"{value / base:.2f}x" + (f" {label}" if label else "")


def throughput_row(name: str, result: dict[str, Any], base_rate: float) -> Row:
    if "error" in result:
        return Row(name, f"failed: {result['error']}", "-", None, result)
    text = fmt_rate(result["rate"])
    if not result.get("complete", True):
        text += f" (INCOMPLETE: {result['frames']:,} frames)"
    return Row(name, text, fmt_ratio(result["rate"], base_rate), result.get("peak_rss_mb"), result)


def latency_text(result: dict[str, Any]) -> str:
    return f"p50 {result['p50_us']:.0f} µs, p99 {result['p99_us']:.0f} µs ({result['pings']:,} pings)"


def markdown(rows: list[Row]) -> str:
    lines = ["| scenario | result | ratio to baseline | peak RSS MB |", "|---|---|---|---|"]
    for row in rows:
        rss = "-" if row.peak_rss_mb is None else f"{row.peak_rss_mb:.1f}"
        lines.append(f"| {row.scenario} | {row.result} | {row.ratio} | {rss} |")
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    import asterisk_ami

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu,
        "asterisk_ami": asterisk_ami.__version__,
        "speedups": asterisk_ami.protocol.SPEEDUPS,
        "commit": commit,
    }


# -- comparisons and the real Asterisk -------------------------------------------------------------------------


def comparison_available(name: str) -> tuple[list[str] | None, str]:
    """The ``--vendor`` arguments that make comparison ``name`` importable, or None and why not."""
    _, directory = COMPARISONS[name]
    if directory.is_dir():
        return ["--vendor", str(directory)], f"from {directory.relative_to(ROOT)}"
    if name == "panoramisk":
        probe = subprocess.run([PYTHON, "-c", "import panoramisk"], capture_output=True, timeout=60)
        if probe.returncode == 0:
            return [], "installed"
    return None, "not installed (python benchmarks/run.py --install-comparisons)"


def install_comparisons() -> None:
    for spec, directory in COMPARISONS.values():
        log(f"pip install --target {directory} {spec}")
        subprocess.run(
            [PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--target", str(directory), spec],
            check=True,
        )
    npm = shutil.which("npm")
    if npm is None:
        log("npm not found: the node comparison rows will be skipped")
        return
    specs = list(NODE_COMPARISONS.values())
    log(f"npm install --prefix {NODE_DIR} {' '.join(specs)}")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", "--silent", *specs], check=True
    )


def node_comparison_available(name: str) -> tuple[bool, str]:
    package = NODE_COMPARISONS[name].rsplit("@", 1)[0]
    if shutil.which("node") is None:
        return False, "node not found"
    if not (NODE_DIR / "node_modules" / package).is_dir():
        return False, "not installed (python benchmarks/run.py --install-comparisons)"
    return True, "installed"


@contextlib.contextmanager
def real_asterisk(start: bool) -> Iterator[dict[str, str] | None]:
    """AMI_* from the environment, or a private sandbox Asterisk started (and stopped) here."""
    keys = ("AMI_HOST", "AMI_PORT", "AMI_USERNAME", "AMI_SECRET")
    if all(os.environ.get(k) for k in keys):
        yield {k: os.environ[k] for k in keys}
        return
    if not start:
        yield None
        return
    state = ["--state-dir", str(SANDBOX_STATE)]
    status = subprocess.run([str(SANDBOX), "status", *state], capture_output=True, text=True, timeout=60)
    started_here = status.returncode != 0
    try:
        if started_here:
            log("starting a sandbox Asterisk (scripts/asterisk-sandbox start)")
            subprocess.run([str(SANDBOX), "start", *state], capture_output=True, text=True, timeout=600, check=True)
        out = subprocess.run([str(SANDBOX), "env", *state], capture_output=True, text=True, timeout=60, check=True)
        env: dict[str, str] = {}
        for line in out.stdout.splitlines():
            if line.startswith("export "):
                key, _, value = line[7:].partition("=")
                env[key] = shlex.split(value)[0] if value else ""
        yield env
    except (subprocess.SubprocessError, OSError) as exc:
        log(f"no real Asterisk: {exc}")
        yield None
    finally:
        if started_here:
            subprocess.run([str(SANDBOX), "stop", *state], capture_output=True, timeout=120)
