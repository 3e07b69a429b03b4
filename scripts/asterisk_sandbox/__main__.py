"""``python scripts/asterisk_sandbox start|stop|status|env`` or ``python -m asterisk_sandbox ...``."""

import sys
from pathlib import Path

if not __package__:  # run as a directory: make the package importable by its name
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asterisk_sandbox.cli import main

sys.exit(main())
