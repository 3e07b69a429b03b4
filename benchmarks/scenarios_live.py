"""The live state's memory scenario (run by ``benchmarks/scenarios.py``, one process like the others).

* ``live_memory``: ``--channels`` concurrent channels in a ``LiveModel``, each from the recorded session's
  channel events (new uniqueids), in calls of two, half of them bridged; peak RSS, and the heap the model
  holds per channel (tracemalloc). The ``lib --live`` scenario measures throughput with a LiveState attached.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc

from common import rss_now_mb, rss_peak_mb


def _channel(uid: str, linkedid: str, n: int) -> dict[str, str]:
    return {
        "event": "Newchannel",
        "privilege": "call,all",
        "channel": f"PJSIP/{1000 + n}-{n:08x}",
        "channelstate": "6",
        "channelstatedesc": "Up",
        "calleridnum": str(1000 + n),
        "calleridname": f"User {n}",
        "connectedlinenum": "<unknown>",
        "connectedlinename": "<unknown>",
        "language": "en",
        "accountcode": "",
        "context": "from-internal",
        "exten": "s",
        "priority": "1",
        "uniqueid": uid,
        "linkedid": linkedid,
    }


def scenario_live_memory(args: argparse.Namespace) -> dict[str, object]:
    from asterisk_ami.live import LiveModel

    before_rss = rss_now_mb()
    gc.collect()
    tracemalloc.start()
    model = LiveModel()
    for n in range(args.channels):
        linkedid = f"1764310597.{n - n % 2}"
        frame = _channel(f"1764310597.{n}", linkedid, n)
        model.feed(frame, 0.0)
        model.feed({**frame, "event": "Newexten", "application": "Dial", "appdata": "PJSIP/x,30"}, 0.0)
        if n % 4 < 2:  # half of the calls are bridged
            bridge = {"bridgeuniqueid": f"b-{n // 4}", "bridgetype": "basic", "bridgetechnology": "simple_bridge"}
            model.feed({**frame, **bridge, "event": "BridgeEnter"}, 0.0)
    views = [model.view(name) for name in ("channels", "calls", "bridges")]
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "channels": len(views[0]),
        "calls": len(views[1]),
        "bridges": len(views[2]),
        "model_kb_per_channel": round(held / 1024 / max(1, args.channels), 2),
        "rss_growth_mb": round(rss_now_mb() - before_rss, 1),
        "peak_rss_mb": round(rss_peak_mb(), 1),
        "complete": len(views[0]) == args.channels,
    }


SCENARIOS = {"live_memory": scenario_live_memory}
