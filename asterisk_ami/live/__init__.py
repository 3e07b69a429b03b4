"""Live state: channels, calls, bridges, queues and device states kept current from the event stream.

    from asterisk_ami import AsteriskAmi
    from asterisk_ami.live import LiveState

    ami = AsteriskAmi(host="pbx", username="admin", password="secret", reconnect=True)
    live = LiveState(ami)
    live.on("call_started", lambda call: print("call", call.linkedid))
    ami.connect()

``LiveModel`` is the sans-IO model underneath: feed it frames (a recorded stream, a test) and read it.
"""

from .model import LiveModel
from .objects import Bridge, Call, Channel, Queue, QueueMember
from .state import LiveState

__all__ = ["Bridge", "Call", "Channel", "LiveModel", "LiveState", "Queue", "QueueMember"]
