"""Ids for requests and completions: unique across processes, cheap, and not secrets.

A random per-process prefix plus a counter costs a fraction of ``uuid4()`` (no system call per id)
on a path every request takes twice.
"""

from __future__ import annotations

import itertools
import secrets

_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count(1)


def new_id(kind: str) -> str:
    """``kind`` + 16 random hex digits for this process + a counter, e.g. ``req_…``."""
    return f"{kind}{_PREFIX}{next(_COUNTER):08x}"
