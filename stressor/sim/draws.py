"""Numbers fixed by a key: uniforms in (0, 1) from a hash of the key's parts, the same in every process and
Python version. A call's draws come from these (see ``stressor.sim.model``), so they depend on what the key names
and on nothing else, such as how many other calls were drawn before."""

from __future__ import annotations

import hashlib
import struct

_BYTES = 8
_SPAN = float(2 ** (8 * _BYTES))


def stable_uniforms(count: int, *parts: object) -> tuple[float, ...]:
    """``count`` (at most 8) numbers strictly between 0 and 1, fixed by ``parts`` (their text)."""
    key = "\x1f".join(str(part) for part in parts).encode()
    digest = hashlib.blake2b(key, digest_size=_BYTES * count).digest()
    return tuple((whole + 0.5) / _SPAN for whole in struct.unpack(f">{count}Q", digest))


def stable_fraction(*parts: object) -> float:
    """One number strictly between 0 and 1 fixed by ``parts``."""
    return stable_uniforms(1, *parts)[0]
