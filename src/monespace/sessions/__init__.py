"""Logged-in sessions and attempt limits of the demo server, kept in the space's storage.

Several server processes (``monespace serve --workers N``) share them through the database:
a session opened through one worker is honoured by every other, and an attempt counted by
one counts for all.
"""

from ._model import Session, SessionKind
from ._service import RateLimitService, SessionService

__all__ = ["RateLimitService", "Session", "SessionKind", "SessionService"]
