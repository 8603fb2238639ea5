"""Staff passwords (issue 9): argon2id through argon2-cffi, the hashing run off the event loop.

The parameters are argon2-cffi's defaults (RFC 9106's low-memory profile: 3 passes over
64 MiB, 4 lanes; ~0.1 s here), kept in each stored PHC string, so raising them later upgrades
each hash at its member's next sign-in (`needs_rehash`). Two threads of their own do the
hashing, so a burst of sign-ins queues instead of taking every core and 64 MiB per attempt.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


async def hash_password(password: str) -> str:
    """The at-rest form of a password: an argon2id PHC string."""
    return await asyncio.get_running_loop().run_in_executor(_threads, _hasher.hash, password)


@functools.cache
def _decoy() -> str:
    return _hasher.hash("callrouter: no such member")


def _verify(stored: str | None, password: str) -> bool:
    # An unknown email (or a member without a password) costs one verification too, so the
    # answer's timing does not tell whether the email exists.
    try:
        _hasher.verify(stored or _decoy(), password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash; always False for `stored` None."""
    return await asyncio.get_running_loop().run_in_executor(_threads, _verify, stored, password)


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash was made with other parameters than today's."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True
