"""mkdocs hook: the performance page's table and chart, rendered from the benchmark's own JSON output.

``docs/explanation/benchmark-results.json`` is what ``benchmarks/run.py --json`` wrote (committed with the
page). At build time the marker ``<!-- benchmark-run -->`` becomes a line saying how and where it ran,
``<!-- benchmark-table -->`` the table ``run.py`` prints, and ``explanation/performance-chart.svg`` is
drawn from the same rows: every row whose ratio is to the bare loop of that run. Re-running the benchmark
with ``--json docs/explanation/benchmark-results.json`` updates all three.
"""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

RESULTS = "explanation/benchmark-results.json"
CHART = "explanation/performance-chart.svg"
PAGE = "explanation/performance.md"
RUN_MARKER = "<!-- benchmark-run -->"
TABLE_MARKER = "<!-- benchmark-table -->"
# "1.73x": a ratio to the run's bare loop; "3.03x of parser baseline" or "1.65x (p50)" are other scales
PLAIN_RATIO = re.compile(r"^(\d+(?:\.\d+)?)x$")


def load(docs_dir: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(docs_dir) / RESULTS).read_text(encoding="utf-8"))
    return data


def table(results: dict[str, Any]) -> str:
    """The rows as ``benchmarks/run.py`` prints them."""
    lines = ["| scenario | result | ratio to bare loop | peak RSS MB |", "|---|---|---|---|"]
    for row in results["rows"]:
        rss = "-" if row["peak_rss_mb"] is None else f"{row['peak_rss_mb']:.1f}"
        lines.append(f"| {row['scenario']} | {row['result']} | {row['ratio']} | {rss} |")
    return "\n".join(lines)


def run_line(results: dict[str, Any]) -> str:
    machine, settings = results["machine"], results["settings"]
    kind = "quick" if settings.get("quick") else "full"
    return (
        f"This run ({kind}, {results['seconds']:.0f} s): Python {machine['python']}, "
        f"{machine['cpus_usable']} CPUs usable ({machine['cpu']}), asterisk_ami {machine['asterisk_ami']} at "
        f"commit `{machine['commit']}`, C fast path {'built' if machine['speedups'] else 'not built'}; "
        f"{settings['events']:,} events per throughput row, best of {settings['repeat']}."
    )


def chart_rows(results: dict[str, Any]) -> list[tuple[str, float]]:
    out = []
    for row in results["rows"]:
        match = PLAIN_RATIO.match(row["ratio"].strip())
        if match:
            out.append((row["scenario"], float(match.group(1))))
    return out


def _label(scenario: str, room: int = 72) -> str:
    return scenario if len(scenario) <= room else scenario[: room - 1] + "…"


def _colour(scenario: str) -> str:
    if scenario.startswith("baseline"):
        return "#9e9e9e"
    if scenario.startswith(("asterisk_ami", "memory", "scale")):
        return "#3f51b5"
    return "#ff9800"  # another client, for comparison


def chart(results: dict[str, Any]) -> str:
    """A horizontal bar chart (SVG) of every ratio to the bare loop, with the 1.0x line."""
    rows = chart_rows(results)
    if not rows:
        raise ValueError(f"{RESULTS} has no row with a ratio to the bare loop")
    label_w, bar_w, row_h, top = 520, 380, 24, 40
    top_ratio = max(ratio for _, ratio in rows) * 1.15
    height = top + row_h * len(rows) + 30
    width = label_w + bar_w + 20
    scale = bar_w / top_ratio
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{label_w}" y="20" font-weight="bold">events/s as a ratio to the bare loop of the same run'
        "</text>",
    ]
    for i, (scenario, ratio) in enumerate(rows):
        y = top + i * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(_label(scenario))}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{ratio * scale:.1f}" height="{row_h - 8}" '
            f'fill="{_colour(scenario)}"/>'
            f'<text x="{label_w + ratio * scale + 4:.1f}" y="{y + 16}">{ratio:.2f}x</text>'
        )
    one = label_w + scale
    parts.append(
        f'<line x1="{one:.1f}" y1="{top - 4}" x2="{one:.1f}" y2="{top + row_h * len(rows)}" '
        'stroke="#212121" stroke-dasharray="4 3"/>'
        f'<text x="{one:.1f}" y="{top + row_h * len(rows) + 18}" text-anchor="middle">1.0x</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, CHART, content=chart(load(config.docs_dir))))
    return files


def on_page_markdown(markdown: str, page: Any, config: MkDocsConfig, files: Files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    for marker in (RUN_MARKER, TABLE_MARKER):
        if marker not in markdown:
            raise ValueError(f"{PAGE} lost its {marker} marker")
    results = load(config.docs_dir)
    return markdown.replace(RUN_MARKER, run_line(results)).replace(TABLE_MARKER, table(results))
