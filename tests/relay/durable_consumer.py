"""A durable RemoteAmi in a process of its own, for the test that kills it: prints the ``N`` header of every
UserEvent of PBX ``p1``, one per line, flushed (its handler returns only once the line is out, so what
it acknowledges it has printed).

    python tests/relay/durable_consumer.py NATS_URL DURABLE
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from asterisk_ami.relay import RemoteAmi


async def main(url: str, durable: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def on_event(frame: dict[str, Any]) -> None:
        sys.stdout.write(f"{frame['n']}\n")
        sys.stdout.flush()

    async with RemoteAmi(url, pbx="p1", durable=durable, replay=True, batch=64) as remote:
        remote.on("UserEvent", on_event)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
