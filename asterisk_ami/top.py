"""``asterisk-ami top``: the live state on one screen (curses, from the standard library), or as text.

``render()`` turns a ``LiveState`` into plain lines (``--once`` prints them); ``run_screen()`` redraws them
full-screen as events arrive, until ``q`` or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .live import Channel, LiveState

DEVICE_STATUS = {  # queue member Status: AST_DEVICE_*
    0: "unknown",
    1: "not in use",
    2: "in use",
    3: "busy",
    4: "invalid",
    5: "unavailable",
    6: "ringing",
    7: "ringing, in use",
    8: "on hold",
}
REFRESH = 0.25  # seconds between redraws at most (durations tick every second anyway)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _party(num: str, name: str) -> str:
    parts = [p for p in (num, name) if p and p != "<unknown>"]
    return " ".join(parts) or "-"


def _where(c: Channel) -> str:
    if c.application:
        return f"{c.application}({c.app_data})"
    return f"{c.context},{c.exten},{c.priority}" if c.context else ""


def render(live: LiveState, title: str = "", now: float | None = None) -> list[str]:
    """The lines of the view: a header, then calls with their channels, bridges, and queues."""
    now = time.time() if now is None else now
    channels, calls, bridges, queues = live.channels, live.calls, live.bridges, live.queues
    unavailable = live.unavailable
    status = "synced" if live.synced else "syncing..."

    def count(name: str, part: Mapping[str, Any]) -> str:
        return f"{name} {'?' if name in unavailable else len(part)}"

    def empty(name: str) -> str:  # an unavailable part is unknown, not empty
        return f" ({name}: not followed, see above)" if name in unavailable else f" (no {name})"

    reasons: dict[str, list[str]] = {}
    for part, why in sorted(unavailable.items()):
        reasons.setdefault(why, []).append(part)
    lines = [
        f"asterisk-ami top  {title}  {status}  {time.strftime('%H:%M:%S', time.localtime(now))}".rstrip(),
        "  ".join(count(n, p) for n, p in (("calls", calls), ("channels", channels), ("bridges", bridges)))
        + f"  {count('queues', queues)}"
        + (f"  (not readable: {', '.join(sorted(unavailable))})" if unavailable else ""),
        *(f"  {', '.join(parts)}: {why}" for why, parts in reasons.items()),
        "",
        "CALLS",
        f" {'duration':8}  {'channel':28} {'state':8} {'caller':20} {'connected':20} where",
    ]
    if not calls:
        lines.append(empty("calls"))
    for call in sorted(calls.values(), key=lambda c: c.started):
        members = sorted((channels[u] for u in call.channels if u in channels), key=lambda c: c.created)
        for n, c in enumerate(members):
            duration = _clock(now - call.started) if n == 0 else ""
            bridge = f"  [bridge {c.bridge_id[:8]}]" if c.bridge_id else ""
            caller, connected = _party(c.callerid_num, c.callerid_name), _party(c.connected_num, c.connected_name)
            lines.append(
                f" {duration:8}  {c.name[:28]:28} {c.state_desc[:8]:8} {caller[:20]:20} {connected[:20]:20}"
                f" {_where(c)}{bridge}"
            )
    lines += ["", "BRIDGES"]
    if not bridges:
        lines.append(empty("bridges"))
    for b in sorted(bridges.values(), key=lambda b: b.created):
        names = ", ".join(sorted(channels[u].name for u in b.channels if u in channels)) or "empty"
        lines.append(f" {b.uniqueid[:8]}  {b.type} {b.technology}  {len(b.channels)} channel(s): {names}")
    lines += ["", "QUEUES"]
    if not queues:
        lines.append(empty("queues"))
    for q in sorted(queues.values(), key=lambda q: q.name):
        lines.append(
            f" {q.name}  strategy {q.strategy or '-'}  waiting {len(q.callers)}  completed {q.completed}"
            f"  abandoned {q.abandoned}  holdtime {q.holdtime} s"
        )
        for m in sorted(q.members.values(), key=lambda m: m.interface):
            paused = f"paused ({m.paused_reason})" if m.paused and m.paused_reason else "paused" if m.paused else ""
            lines.append(
                f"   member {m.interface:24} {m.name[:16]:16} {DEVICE_STATUS.get(m.status, str(m.status)):16}"
                f" {'in call' if m.in_call else ''} {paused}".rstrip()
            )
        for position, uid in enumerate(q.callers, start=1):
            waiting = channels.get(uid)
            who = f"{waiting.name}  {_party(waiting.callerid_num, waiting.callerid_name)}" if waiting else uid
            waited = f"  waiting {_clock(now - waiting.created)}" if waiting else ""
            lines.append(f"   caller {position}  {who}{waited}")
    return lines


def run_screen(live: LiveState, title: str = "", stop: Callable[[], bool] = lambda: False) -> None:
    """The full-screen view until ``q``, Ctrl-C or ``stop()``; redraws at most every REFRESH seconds."""
    import curses

    def loop(screen: Any) -> None:
        with contextlib.suppress(curses.error):
            curses.curs_set(0)
        screen.timeout(int(REFRESH * 1000))
        while not stop():
            height, width = screen.getmaxyx()
            lines = render(live, title)
            if len(lines) > height:
                hidden = len(lines) - height + 1
                lines = [*lines[: height - 1], f" ... {hidden} more line(s): make the terminal taller"]
            screen.erase()
            for row, line in enumerate(lines[:height]):
                with contextlib.suppress(curses.error):  # the bottom-right cell cannot be written
                    screen.addstr(row, 0, line[: max(0, width - 1)])
            screen.refresh()
            key = screen.getch()
            if key in (ord("q"), ord("Q")):
                return

    with contextlib.suppress(KeyboardInterrupt):
        curses.wrapper(loop)


def text_lines(lines: Iterable[str]) -> str:
    return "\n".join(lines) + "\n"
