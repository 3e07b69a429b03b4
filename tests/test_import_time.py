"""``import asterisk_ami`` (either client, a client made, connected handlers aside) loads no catalogue
module and no catalogue data: the catalogue costs something only where it is used."""

from __future__ import annotations

import json
import subprocess
import sys

CODE = """
import json, sys
import asterisk_ami
import asterisk_ami.asyncio
from asterisk_ami import AsteriskAmi, CatalogueError, CatalogueWarning, MissingParameterError
AsteriskAmi(host="127.0.0.1")
asterisk_ami.asyncio.AsteriskAmi(host="127.0.0.1")
before = sorted(m for m in sys.modules if m.startswith("asterisk_ami.catalogue") or m == "asterisk_ami.events")
AsteriskAmi(host="127.0.0.1").on("Hangup", print)  # the first on() loads it, for its name check
after = sorted(m for m in sys.modules if m.startswith("asterisk_ami.catalogue"))
print(json.dumps([before, after]))
"""


def test_import_asterisk_ami_loads_no_catalogue() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True, timeout=60)
    before, after = json.loads(out.stdout)
    assert before == [], before
    assert "asterisk_ami.catalogue" in after  # the check is real: on() does load it
