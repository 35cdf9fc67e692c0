"""Consentry's Python SDK: check consent in process (Replica), over HTTP (Client), per route (ASGI).

docs/enforcement.md compares the three and what each guarantees about freshness.
"""

from consentry.sdk.client import Client, ConsentryError, ConsentryUnavailable, Recorded
from consentry.sdk.middleware import ConsentMiddleware, Rule
from consentry.sdk.replica import Replica

__all__ = [
    "Client",
    "ConsentMiddleware",
    "ConsentryError",
    "ConsentryUnavailable",
    "Recorded",
    "Replica",
    "Rule",
]
