"""monespace: a reference SDK for a national personal health space.

Modelled on France's "Mon espace santé" (the successor of the DMP)::

    import monespace
    space = monespace.open("sqlite:///monespace.db")

See the documentation in ``docs/`` for the tutorial, how-to guides and reference.
"""

from ._settings import Settings
from ._space import Space, open
from ._version import __version__
from .actors import AccessMode, Actor, ActorKind
from .clock import Clock, ManualClock, SystemClock
from .errors import MonespaceError
from .hookspecs import hookimpl

__all__ = [
    "AccessMode",
    "Actor",
    "ActorKind",
    "Clock",
    "ManualClock",
    "MonespaceError",
    "Settings",
    "Space",
    "SystemClock",
    "__version__",
    "hookimpl",
    "open",
]
