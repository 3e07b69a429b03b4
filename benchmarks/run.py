"""asterisk-ami benchmarks, one command: ``python benchmarks/run.py [--quick] [--check] [--json out.json]``.

Every number is compared with a baseline measured in the same run on the same machine (ratios, never
absolute targets). Each client scenario runs in its own process (``benchmarks/scenarios.py``), so peak
RSS is per scenario and no client shares a GIL with a server; servers are processes too:

* ``benchmarks/firehose.py``: a dedicated raw-socket replayer (banner, Login, then N pre-encoded events
  of the recorded Asterisk 22 session, ~420 bytes and ~20 headers each, with ``sendall`` of ~1 MB);
* ``benchmarks/fakeserver.py``: the project's ``FakeAsterisk`` (Ping latency rows, and in the full run a
  FakeAsterisk-served throughput pair to show the dedicated firehose does not flatter the numbers).

Rows: the bare baseline loop (recv + split + one dict per frame, the issue's definition), the library
through ``ami_data`` (with and without ``identifier``, and in pure Python), panoramisk and asterisk-ami
0.1.7 from PyPI and the node clients asterisk-ami 0.1.0 (the original) and asterisk-manager 0.2.0
(``benchmarks/node_client.js``) when available (``--install-comparisons`` puts them in
``benchmarks/.vendor/`` with pip and npm), the parser alone in memory (C fast path and pure Python),
Ping round trips (bare socket vs ``ami.request``) against FakeAsterisk and a real Asterisk
(``AMI_HOST``/``AMI_PORT``/``AMI_USERNAME``/``AMI_SECRET`` or ``--asterisk``), peak RSS over 1,000,000
events, and 100 clients in one process.

``--check`` is the regression guard for CI: it exits 1 when a same-run ratio or bound is broken by a
generous margin (see ``CHECKS``); it is never a timed test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_DIR, DEFAULT_CORPUS, ROOT, SECRET, USERNAME, VENDOR_DIR

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

# --check floors: generous on purpose, compared only within one run
MIN_LIB_RATIO = 1.0  # ami_data throughput / bare loop throughput (the target; ~1.8x measured)
MIN_PURE_RATIO = 0.5  # the same without the C fast path (~0.75x measured)
MIN_PARSER_RATIO = 1.0  # AmiProtocol / bare loop, in memory (~2.8x measured; pure Python ~0.88x)
MAX_PING_OVERHEAD_US = 2000.0  # p50(ami.request) - p50(bare socket), FakeAsterisk
MAX_PEAK_RSS_MB = 40.0  # streaming 1,000,000 events
MAX_BLOCKS_PER_EVENT = 0.05  # pymalloc blocks gained per event after warm-up (a leak of one object/event: ~1)
# --check: a ratio row under its floor is sampled again, interleaved with its baseline, up to this many
# rounds, and its best sample counts: a real regression stays under in every round, noise does not
RETRY_ROUNDS = 4
THROUGHPUT_FLOORS = {"lib": MIN_LIB_RATIO, "lib_identifier": MIN_LIB_RATIO, "lib_pure": MIN_PURE_RATIO}
PARSER_FLOORS = {"parser_lib": MIN_PARSER_RATIO}


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


# -- the run -----------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and pings (< 60 s)")
    parser.add_argument("--events", type=int, help="events per throughput row (default 500,000; quick 200,000)")
    parser.add_argument("--memory-events", type=int, default=1_000_000, help="events of the memory row")
    parser.add_argument("--repeat", type=int, help="runs per throughput row, best kept (default 3; quick 1)")
    parser.add_argument("--pings", type=int, help="Ping round trips per latency row (default 2,000; quick 300)")
    parser.add_argument("--clients", type=int, help="clients of the scale row (default 100; quick 20)")
    parser.add_argument("--json", type=Path, help="write every result to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 when a same-run floor is broken")
    parser.add_argument("--asterisk", action="store_true", help="start a sandbox Asterisk for the real latency rows")
    parser.add_argument("--profile", action="store_true", help="cProfile the ami_data scenario, print the top 10")
    parser.add_argument("--no-comparisons", action="store_true", help="skip panoramisk and PyPI asterisk-ami")
    parser.add_argument("--install-comparisons", action="store_true", help="pip install them into .vendor/ first")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()

    quick = args.quick
    events = args.events or (200_000 if quick else 500_000)
    repeat = args.repeat or (1 if quick else 3)
    pings = args.pings or (300 if quick else 2000)
    clients = args.clients or (20 if quick else 100)
    corpus = ["--corpus", str(args.corpus)]
    started = time.monotonic()
    if args.install_comparisons:
        install_comparisons()

    rows: list[Row] = []
    results: dict[str, Any] = {}
    notes: list[str] = []

    # 1. throughput through a socket, all against one firehose process
    names = {
        "baseline": "baseline: bare loop (recv + split + dict per frame)",
        "lib": "asterisk_ami: ami_data handler",
        "lib_identifier": "asterisk_ami: ami_data handler, identifier set",
        "lib_pure": "asterisk_ami: ami_data handler, pure Python (ASTERISK_AMI_PURE_PYTHON=1)",
        "pypi_ami": "asterisk-ami 0.1.7 (PyPI): add_event_listener",
        "panoramisk": "panoramisk 1.4: register_event('*')",
        "node_ami": "asterisk-ami 0.1.0 for node (the original): ami_data",
        "node_manager": "asterisk-manager 0.2.0 for node: managerevent",
    }
    plan: dict[str, list[str]] = {
        "baseline": [],
        "lib": [],
        "lib_identifier": ["--identifier", "pbx-1"],
        "lib_pure": [],
    }
    if not args.no_comparisons:
        for name in ("pypi_ami", "panoramisk"):
            vendor, how = comparison_available(name)
            if vendor is None:
                notes.append(f"{names[name]}: skipped, {how}")
            else:
                plan[name] = vendor
        for name in NODE_COMPARISONS:
            ok, how = node_comparison_available(name)
            if ok:
                plan[name] = []
            else:
                notes.append(f"{names[name]}: skipped, {how}")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in plan}
    with server("firehose.py", "--events", str(events), *corpus) as port:

        def sample_throughput(name: str) -> dict[str, Any]:
            if name in NODE_COMPARISONS:
                return run_node(name, port, events)
            scenario = "lib" if name.startswith("lib") else name
            env = PURE_ENV if name.endswith("_pure") else None
            return run_scenario(scenario, "--port", str(port), "--events", str(events), *plan[name], *corpus, env=env)

        for i in range(repeat):
            for name in plan:
                log(f"throughput {name} ({events:,} events, run {i + 1}/{repeat})")
                runs[name].append(sample_throughput(name))
        if args.check:
            notes += resample(runs, THROUGHPUT_FLOORS, "baseline", sample_throughput)
    best = {name: best_of(r) for name, r in runs.items()}
    results["throughput"] = best
    base_rate = float(best["baseline"].get("rate") or 0.0)
    for name in plan:
        rows.append(throughput_row(names[name], best[name], base_rate))

    # the same pair served by the project's FakeAsterisk (full run only)
    if not quick:
        fake_runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "lib": []}
        with server("fakeserver.py", "--stream", str(events), *corpus) as port:
            for i in range(repeat):
                for name in fake_runs:
                    log(f"throughput {name} served by FakeAsterisk (run {i + 1}/{repeat})")
                    fake_runs[name].append(run_scenario(name, "--port", str(port), "--events", str(events), *corpus))
        fake_best = {name: best_of(r) for name, r in fake_runs.items()}
        results["throughput_fake_asterisk"] = fake_best
        rows.append(throughput_row("baseline, served by FakeAsterisk", fake_best["baseline"], base_rate))
        rows.append(throughput_row("asterisk_ami: ami_data, served by FakeAsterisk", fake_best["lib"], base_rate))

    # 2. parser alone, in memory
    parser_events = max(events, 200_000)
    parse: dict[str, list[dict[str, Any]]] = {"parser_baseline": [], "parser_lib": [], "parser_lib_pure": []}

    def sample_parser(name: str) -> dict[str, Any]:
        env = PURE_ENV if name.endswith("_pure") else None
        return run_scenario(name.removesuffix("_pure"), "--events", str(parser_events), *corpus, env=env)

    for i in range(repeat):
        for name in parse:
            log(f"{name} ({parser_events:,} frames in memory, run {i + 1}/{repeat})")
            parse[name].append(sample_parser(name))
    if args.check:
        notes += resample(parse, PARSER_FLOORS, "parser_baseline", sample_parser)
    parse_best = {name: best_of(r) for name, r in parse.items()}
    results["parser"] = parse_best
    parser_base = float(parse_best["parser_baseline"].get("rate") or 0.0)
    for name, label in (
        ("parser_baseline", "parser baseline: split + dict per frame, in memory"),
        ("parser_lib", "asterisk_ami parser: AmiProtocol.receive_data, in memory"),
        ("parser_lib_pure", "asterisk_ami parser, pure Python (ASTERISK_AMI_PURE_PYTHON=1)"),
    ):
        r = parse_best[name]
        if "error" in r:
            rows.append(Row(label, f"failed: {r['error']}", "-", None, r))
            continue
        text = f"{r['rate']:,.0f} frames/s, {r['mb_per_s']:.0f} MB/s"
        rows.append(Row(label, text, fmt_ratio(r["rate"], parser_base, "of parser baseline"), r["peak_rss_mb"], r))

    # 3. Ping latency: FakeAsterisk, then the real Asterisk when there is one
    ping_args = ["--pings", str(pings), "--warmup", str(min(200, pings))]
    latency: dict[str, Any] = {}
    with server("fakeserver.py", *corpus) as port:
        for name in ("ping_bare", "ping_lib"):
            log(f"{name} against FakeAsterisk ({pings} pings)")
            latency[f"fake_{name}"] = run_scenario(name, "--port", str(port), *ping_args)
    with real_asterisk(args.asterisk) as env:
        if env is None:
            notes.append("real Asterisk latency: skipped (set AMI_HOST/AMI_PORT/AMI_USERNAME/AMI_SECRET or --asterisk)")
        else:
            real = [
                "--host",
                env["AMI_HOST"],
                "--port",
                env["AMI_PORT"],
                "--username",
                env["AMI_USERNAME"],
                "--secret",
                env["AMI_SECRET"],
            ]
            for name in ("ping_bare", "ping_lib"):
                log(f"{name} against the real Asterisk at {env['AMI_HOST']}:{env['AMI_PORT']} ({pings} pings)")
                latency[f"real_{name}"] = run_scenario(name, *real, *ping_args)
    results["latency"] = latency
    for server_name, label in (("fake", "FakeAsterisk"), ("real", "real Asterisk")):
        bare, lib = latency.get(f"{server_name}_ping_bare"), latency.get(f"{server_name}_ping_lib")
        if bare is None or lib is None:
            continue
        if "error" in bare or "error" in lib:
            rows.append(
                Row(f"Ping round trip ({label})", f"failed: {bare.get('error') or lib.get('error')}", "-", None)
            )
            continue
        overhead = lib["p50_us"] - bare["p50_us"]
        lib["overhead_p50_us"] = round(overhead, 1)
        rows.append(
            Row(f"Ping RTT, bare socket ({label})", latency_text(bare), "1.00x (p50)", bare["peak_rss_mb"], bare)
        )
        rows.append(
            Row(
                f"Ping RTT, ami.request ({label})",
                latency_text(lib) + f"; overhead p50 {overhead:+.0f} µs",
                fmt_ratio(lib["p50_us"], bare["p50_us"], "(p50)"),
                lib["peak_rss_mb"],
                lib,
            )
        )

    # 4. memory over 1,000,000 events
    mem_events = args.memory_events
    with server("firehose.py", "--events", str(mem_events), *corpus) as port:
        log(f"memory: {mem_events:,} events through ami_data")
        mem = run_scenario("lib", "--port", str(port), "--events", str(mem_events), "--sample", "0.05", *corpus)
    results["memory"] = mem
    if "error" in mem:
        rows.append(Row(f"memory: {mem_events:,} events via ami_data", f"failed: {mem['error']}", "-", None, mem))
    else:
        text = (
            f"{fmt_rate(mem['rate'])}; RSS {mem['rss_10pct_mb']:.1f} MB at 10 %,"
            f" {mem['rss_end_mb']:.1f} MB at the end;"
            f" 2nd-half max - warm max {mem.get('rss_growth_mb', float('nan')):+.1f} MB;"
            f" dispatch queue high water {mem.get('queue_high_water_frames', '?')} frames;"
            f" heap blocks {mem.get('blocks_growth_per_event', float('nan')):+.3f}/event after warm-up"
        )
        if not mem.get("complete"):
            text += f" (INCOMPLETE: {mem['frames']:,} frames)"
        rows.append(
            Row(
                f"memory: {mem_events:,} events via ami_data",
                text,
                fmt_ratio(mem["rate"], base_rate),
                mem["peak_rss_mb"],
            )
        )

    # 5. many connections in one process
    per_client = max(1000, events // clients)
    with server("firehose.py", "--events", str(per_client), *corpus) as port:
        log(f"scale: {clients} clients x {per_client:,} events in one process")
        scale = run_scenario(
            "scale", "--port", str(port), "--events", str(per_client), "--clients", str(clients), *corpus
        )
    results["scale"] = scale
    label = f"scale: {clients} clients in one process, {per_client:,} events each"
    if "error" in scale:
        rows.append(Row(label, f"failed: {scale['error']}", "-", None, scale))
    else:
        text = f"{fmt_rate(scale['rate'])} aggregate, {scale['peak_threads']} threads"
        if not scale.get("complete"):
            text += " (INCOMPLETE)"
        rows.append(Row(label, text, fmt_ratio(scale["rate"], base_rate), scale["peak_rss_mb"], scale))

    # 6. optional profile of the ami_data scenario
    profile_text = None
    if args.profile:
        with server("firehose.py", "--events", str(events), *corpus) as port:
            log("profiling the ami_data scenario (cProfile on every thread)")
            prof = run_scenario("lib", "--port", str(port), "--events", str(events), "--profile", *corpus)
        profile_text = prof.get("profile") or prof.get("error")
        results["profile"] = profile_text

    # checks
    failures: list[str] = []
    lib_rate = float(best["lib"].get("rate") or 0.0)
    checks: list[tuple[str, bool]] = [
        (f"ami_data throughput >= {MIN_LIB_RATIO}x bare loop", base_rate > 0 and lib_rate / base_rate >= MIN_LIB_RATIO),
        (
            f"ami_data with identifier >= {MIN_LIB_RATIO}x bare loop",
            base_rate > 0 and float(best["lib_identifier"].get("rate") or 0) / base_rate >= MIN_LIB_RATIO,
        ),
        (
            f"ami_data, pure Python >= {MIN_PURE_RATIO}x bare loop",
            base_rate > 0 and float(best["lib_pure"].get("rate") or 0) / base_rate >= MIN_PURE_RATIO,
        ),
        (
            "every ami_data run received every event",
            all(r.get("complete") for r in runs["lib"] + runs["lib_identifier"] + runs["lib_pure"]),
        ),
        (
            "the C fast path was used where meant, and not in the pure-Python rows",
            all(r.get("speedups") is True for r in runs["lib"] + parse["parser_lib"])
            and all(r.get("speedups") is False for r in runs["lib_pure"] + parse["parser_lib_pure"]),
        ),
        (
            f"parser >= {MIN_PARSER_RATIO}x bare parser",
            parser_base > 0 and float(parse_best["parser_lib"].get("rate") or 0) / parser_base >= MIN_PARSER_RATIO,
        ),
        (
            f"Ping p50 overhead (FakeAsterisk) <= {MAX_PING_OVERHEAD_US:.0f} µs",
            latency.get("fake_ping_lib", {}).get("overhead_p50_us", 1e9) <= MAX_PING_OVERHEAD_US,
        ),
        (
            f"peak RSS over {mem_events:,} events < {MAX_PEAK_RSS_MB:.0f} MB",
            bool(mem.get("complete")) and float(mem.get("peak_rss_mb", 1e9)) < MAX_PEAK_RSS_MB,
        ),
        (
            f"no growth after warm-up: heap blocks <= {MAX_BLOCKS_PER_EVENT} per event",
            abs(float(mem.get("blocks_growth_per_event", 1e9))) <= MAX_BLOCKS_PER_EVENT,
        ),
        ("scale: every client received every event", bool(scale.get("complete"))),
    ]
    failures = [name for name, ok in checks if not ok]
    elapsed = time.monotonic() - started

    info = machine_info()
    print(
        f"\nasterisk-ami benchmarks ({'quick' if quick else 'full'}): Python {info['python']}, "
        f"{info['cpus_usable']} CPUs usable ({info['cpu']}), asterisk_ami {info['asterisk_ami']} @ {info['commit']}"
        f", C fast path {'built' if info['speedups'] else 'NOT built'}"
    )
    print(
        f"{events:,} events per throughput row, best of {repeat} (more where --check sampled again)"
        f"; corpus: {args.corpus.name} events "
        f"(firehose.py replays them); ratios are to the bare loop of this run\n"
    )
    print(markdown(rows))
    for note in notes:
        print(f"\n- {note}")
    if profile_text:
        print("\nProfile of the ami_data scenario (all threads, top 10 by tottime):\n")
        print(profile_text)
    print(f"\nchecks{' (--check)' if args.check else ''}:")
    for name, ok in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    print(f"\ntook {elapsed:.0f} s")

    if args.json:
        payload = {
            "machine": info,
            "settings": {"events": events, "repeat": repeat, "pings": pings, "clients": clients, "quick": quick},
            "rows": [
                {"scenario": r.scenario, "result": r.result, "ratio": r.ratio, "peak_rss_mb": r.peak_rss_mb}
                for r in rows
            ],
            "results": results,
            "checks": {name: ok for name, ok in checks},
            "notes": notes,
            "seconds": round(elapsed, 1),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {args.json}")
    if args.check and failures:
        print(f"\n--check failed: {'; '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
