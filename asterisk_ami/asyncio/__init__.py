"""The asyncio shell: ``AsteriskAmi`` on one event loop, on the same sans-IO session as the threaded client.

from asterisk_ami.asyncio import AsteriskAmi

async with AsteriskAmi(host="pbx", username="admin", password="secret", reconnect=True) as ami:
    ami.on("Hangup", on_hangup)                       # a plain function, or an async def
    result = await ami.request({"Action": "CoreShowChannels"}, timeout=10)
    async for frame in ami.events("Newchannel", "Hangup"):
        ...
"""

from .client import AsteriskAmi
from .stream import EventStream

__all__ = ["AsteriskAmi", "EventStream"]
