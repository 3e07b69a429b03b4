"""The optional C fast path of asterisk_ami.protocol (see _speedups.c)."""

def parse_simple(
    text: str, keys: dict[str, str], follows: str, /
) -> tuple[list[dict[str, str | list[str]] | str], int] | None: ...
