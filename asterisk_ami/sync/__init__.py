"""The threaded shell: ``AsteriskAmi`` with a reader and a dispatch thread, on the same sans-IO lifecycle as
``asterisk_ami.asyncio``. ``from asterisk_ami import AsteriskAmi`` is this client.

from asterisk_ami import AsteriskAmi

with AsteriskAmi(host="pbx", username="admin", password="secret") as ami:   # logged in here
    ami.on("Hangup", lambda frame: print(frame["channel"]))
    print(ami.request({"Action": "CoreShowChannels"}).events)
    for frame in ami.events("Newchannel", "Queue*"):
        ...
"""

from .client import AsteriskAmi
from .stream import EventStream

__all__ = ["AsteriskAmi", "EventStream"]
