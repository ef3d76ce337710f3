"""monespace: a reference SDK for a national personal health space.

Modelled on France's "Mon espace santé" (the successor of the DMP)::

    import monespace
    space = monespace.open("sqlite:///monespace.db")

See the documentation in ``docs/`` for the tutorial, how-to guides and reference.
"""

from ._dispatch import DispatchReport
from ._settings import Settings
from ._space import Space, copy_space, open
from ._version import __version__
from .access._service import AccessService
from .accounts._service import AccountService
from .actors import AccessMode, Actor, ActorKind
from .audit._service import AuditService
from .clock import Clock, ManualClock, SystemClock
from .crypto import RotationReport
from .errors import MonespaceError
from .hookspecs import hookimpl
from .messaging._service import MessagingService
from .record._measures import MeasureService
from .record._profile import ProfileService
from .record._service import RecordService

__all__ = [
    "AccessMode",
    "AccessService",
    "AccountService",
    "Actor",
    "ActorKind",
    "AuditService",
    "Clock",
    "DispatchReport",
    "ManualClock",
    "MeasureService",
    "MessagingService",
    "MonespaceError",
    "ProfileService",
    "RecordService",
    "RotationReport",
    "Settings",
    "Space",
    "SystemClock",
    "__version__",
    "copy_space",
    "hookimpl",
    "open",
]
