"""The :class:`Space` facade and :func:`open`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from ._dispatch import DispatchReport, dispatch
from ._settings import Settings
from ._unit import Core
from .access._facts import AccessFacts
from .access._service import AccessService, FirstAccessNotifier
from .accounts._migration import DmpMigrationService
from .accounts._service import AccountService
from .actors import Actor
from .agenda import AgendaService
from .audit._service import AuditService
from .catalogue import CatalogueService, ConsentService, OAuthService
from .clock import Clock, SystemClock
from .crypto import KeyProvider, Keyring, RotationReport
from .messaging._service import MessagingService
from .plugins import Plugins
from .policy import Action, Resource, Rule
from .record._measures import MeasureService
from .record._profile import ProfileService
from .record._service import RecordService
from .research import ResearchService
from .sessions import RateLimitService, SessionService
from .storage import CopyReport, Slice, StorageBackend, compare_stores, copy_store
from .transport import Transport

__all__ = ["Space", "copy_space", "open"]


class Space:
    """A personal health space store: the entry point of the library.

    Build one with :func:`monespace.open`. Its attributes are the services::

        space.accounts   # persons, the lifecycle of their space, codes, representatives
        space.record     # the medical record: typed documents, visibility, search
        space.profile    # the profil médical the holder writes
        space.measures   # health measures (weight, blood pressure...) as time series
        space.dmp        # migration of legacy DMPs, with a reconciliation ledger
        space.access     # professionals, the patient's controls, emergency access, history
        space.audit      # the hash-chained audit trail
        space.messaging  # secure messaging between professionals and patients
        space.agenda     # appointments and health events, prevention reminders
        space.research   # pseudonymised extracts for approved studies
        space.catalogue  # the référencement of third-party apps, the public catalogue
        space.consents   # the apps a patient connected, and what each may do
        space.oauth      # the OAuth 2 codes and tokens of those apps
        space.sessions   # the demo server's logged-in sessions, shared by its processes
        space.rate_limits  # attempt counters of the server's logins, shared likewise

    A space is a context manager; leaving the block closes storage and transports.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        storage: StorageBackend,
        *,
        url: str,
        plugins: Plugins,
        clock: Clock | None = None,
        key_provider: KeyProvider | None = None,
        transports: Mapping[str, Transport] | None = None,
        settings: Settings | None = None,
        rules: tuple[Rule, ...] | None = None,
    ) -> None:
        self.url = url
        self.plugins = plugins
        # Private: services reach storage through the policy; nothing outside them should.
        self._storage = storage
        settings = settings or Settings()
        keyring = Keyring(
            storage,
            (lambda: key_provider) if key_provider else lambda: plugins.key_provider(url),
            cache_size=settings.data_key_cache_size,
            cache_lifetime=settings.data_key_cache_lifetime,
        )
        self._core = Core(
            storage=storage,
            keyring=keyring,
            clock=clock or SystemClock(),
            plugins=plugins,
            settings=settings,
            facts=AccessFacts(settings.lifecycle.legacy_dmp_transition_end),
            rules=rules,
        )
        self.transports: dict[str, Transport] = dict(transports or {})
        self.accounts = AccountService(self._core)
        self.record = RecordService(self._core)
        self.profile = ProfileService(self._core, self.record)
        self.measures = MeasureService(self._core)
        self.dmp = DmpMigrationService(self._core, self.record)
        self.access = AccessService(self._core)
        self.audit = AuditService(self._core)
        self.messaging = MessagingService(self._core, self.record)
        self.agenda = AgendaService(self._core)
        self.research = ResearchService(self._core, self.agenda)
        self.catalogue = CatalogueService(self._core)
        self.consents = ConsentService(self._core)
        self.oauth = OAuthService(self._core, self.catalogue, self.consents)
        self.sessions = SessionService(self._core)
        self.rate_limits = RateLimitService(self._core)
        # Side effects of what the services record, in the same transaction.
        self._core.subscribers.append(FirstAccessNotifier(self._core))

    @property
    def clock(self) -> Clock:
        """The clock every rule of this space reads the time from."""
        return self._core.clock

    @property
    def settings(self) -> Settings:
        """The space's limits and delays."""
        return self._core.settings

    def schema_version(self) -> int:
        """The schema version of the store (diagnostics, such as ``monespace info``).

        .. versionadded:: 0.1
        """
        return self._storage.schema_version

    def storage_summary(self) -> str:
        """What the space is stored in, for diagnostics: the backend and where its data is
        (never a password from the URL).

        .. versionadded:: 0.1
        """
        return repr(self._storage)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the service calls made in the block as one unit of work: all or nothing.

        Each call still asks the policy and is audited; if one fails (or is denied), what
        the others wrote in the block is rolled back too, and the failure is traced. For
        imports that must land whole, such as a FHIR transaction bundle::

            with space.transaction():
                for content in contents:
                    space.record.add_document(actor, patient_id, content, ...)

        .. versionadded:: 0.1
        """
        with self._core.unit():
            yield

    def tick(
        self, now: datetime | None = None, *, slice: Slice | tuple[int, int] | None = None
    ) -> dict[str, int]:
        """Apply every deadline that has passed at *now* (default: the clock's time).

        Call it from a scheduler, daily or more often. It is idempotent: a second run at the
        same moment finds nothing to do. Referenced apps whose convention ended are marked
        expired (``apps_expired``). With ``Settings.agenda.send_reminders`` it also
        queues the prevention reminders newly due (``reminders_sent``).

        :param slice: ``(i, n)`` or :class:`~monespace.storage.Slice`: only the patients
            of slice *i* of *n* (by a hash of their id). Run the *n* slices at once, in as
            many processes or machines, and together they do what one run does; the
            deadlines of no patient (the catalogue's) are applied by slice 0.
        :return: how many transitions of each kind were applied.

        .. versionchanged:: 0.3 *slice*.
        """
        part = Slice(*slice) if isinstance(slice, tuple) else slice
        moment = now if now is not None else self._core.now()
        counts = self.accounts.tick(moment, part=part)
        more = [
            self.record.tick(moment, part=part),
            self.dmp.tick(moment, part=part),
            self.messaging.tick(moment, part=part),
            self.oauth.tick(moment, part=part),
        ]
        if part is None or part.index == 0:
            more.append(self.catalogue.tick(moment))
        for counted in more:
            for name, count in counted.items():
                if count:
                    counts[name] = counts.get(name, 0) + count
        if self.settings.agenda.send_reminders:
            sent = self.agenda.tick(moment, part=part)["reminders_sent"]
            if sent:
                counts["reminders_sent"] = sent
        return counts

    @property
    def shared_by_processes(self) -> bool:
        """Whether other processes may open this space's store and write to it at the same
        time (a database server such as PostgreSQL; not an SQLite file or memory).

        .. versionadded:: 0.3
        """
        return self._storage.shared_by_processes

    def dispatch(
        self,
        *,
        limit: int = 100,
        dispatcher: str | None = None,
        lease: timedelta = timedelta(minutes=5),
    ) -> DispatchReport:
        """Deliver due notifications from the outbox through the configured transports.

        Call it from a scheduler (or after each request in a small deployment). Each
        notification is tried once per call; failures are retried with exponential backoff.
        Several dispatchers may run at once, in threads or processes: each claims the
        notifications it delivers for *lease*, so none is sent twice; the claims of a
        dispatcher that crashed end with their lease, and another takes them over.

        :param dispatcher: a name for this dispatcher in the claims (default: host,
            process and a random part).

        .. versionchanged:: 0.3 claims, *dispatcher* and *lease*.
        """
        return dispatch(
            self._core, self.transports, limit=limit, dispatcher=dispatcher, lease=lease
        )

    def data_keys_to_rewrap(self, *, new_key: bool = True) -> int:
        """How many data keys :meth:`rotate_master_key` would re-wrap if run now (the
        length of its progress bar). Counts only; no key is read.

        .. versionadded:: 0.2
        """
        return self._core.keyring.to_rewrap(new_key=new_key)

    def rotate_master_key(
        self,
        actor: Actor,
        *,
        new_key: bool = True,
        batch: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> RotationReport:
        """Re-wrap every data key with a new master key (operator only).

        With ``new_key=True`` the key provider creates the new key; with ``False``, the
        provider's current key was changed by other means and the run moves every data key
        onto it. Interrupted runs are finished by running again. ``progress(n)`` is called
        after each batch with the number of keys it re-wrapped.

        .. versionchanged:: 0.2 *progress*.
        """
        with self._core.unit() as unit:
            unit.authorize(actor, Action.KEYS_ROTATE, Resource(None, "keys"))
        report = self._core.keyring.rotate(new_key=new_key, batch=batch, progress=progress)
        with self._core.unit() as unit:
            unit.record(
                actor,
                Action.KEYS_ROTATE,
                Resource(None, "keys", report.master_key_id),
                "operator_administers",
            )
        return report

    def close(self) -> None:
        """Close transports and storage. Idempotent."""
        for transport in self.transports.values():
            transport.close()
        self._core.keyring.forget()
        self._storage.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Space({self._storage!r})"


def open(
    url: str = "sqlite:///monespace.db",
    *,
    clock: Clock | None = None,
    key_provider: KeyProvider | None = None,
    transports: Mapping[str, Transport | str] | None = None,
    settings: Settings | None = None,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    rules: tuple[Rule, ...] | None = None,
) -> Space:
    """Open the space stored at *url*.

    :param url: ``memory://``, ``sqlite:///path.db``, or any scheme a plugin registers
        (``postgresql://...`` with ``monespace-postgres``).
    :param clock: where time comes from (default: the system clock).
    :param key_provider: the master-key provider; by default the first one a plugin offers,
        else ``MONESPACE_MASTER_KEY`` or the key file.
    :param transports: channel name → transport, or a transport URL
        (``{"email": "file:///var/spool/monespace"}``).
    :param settings: limits and delays, including the lifecycle durations, the guessing
        limits and the record's visibility delays (:class:`monespace.Settings`).
    :param plugins: plugin objects to register besides the installed ones.
    :param load_entrypoints: load the plugins installed under the ``monespace`` group.
    :param rules: replace the access policy's rules (:func:`monespace.access.default_rules`
        is the default); for embedders with stricter local rules. Deny by default remains.
    :raises UnknownSchemeError: when no backend serves the URL's scheme.
    :raises SchemaVersionError: when the store was written by a newer monespace.
    """
    registry = Plugins(plugins, load_entrypoints=load_entrypoints)
    storage = registry.open_storage(url)
    try:
        built = {
            channel: registry.make_transport(t) if isinstance(t, str) else t
            for channel, t in (transports or {}).items()
        }
    except BaseException:
        storage.close()
        raise
    return Space(
        storage,
        url=url,
        plugins=registry,
        clock=clock,
        key_provider=key_provider,
        transports=built,
        settings=settings,
        rules=rules,
    )


def copy_space(
    source: str,
    target: str,
    *,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[CopyReport, list[str]]:
    """Copy the space stored at *source* into *target* (created and migrated when new),
    patient by patient, resumable; return what was copied and the tables whose rows differ
    between the two once done (empty for a faithful copy).

    Rows are copied sealed, byte for byte: *target* opens with the same master key, and its
    audit trail verifies with the same audit keys (open it and call ``audit.verify()``).

    :param progress: called with (patients done, patients in all) after each patient.
    :raises StorageError: when the stores are not SQL stores of the same schema version.

    .. versionadded:: 0.3
    """
    registry = Plugins(plugins, load_entrypoints=load_entrypoints)
    with registry.open_storage(source) as src, registry.open_storage(target) as dst:
        report = copy_store(src, dst, progress=progress)
        return report, compare_stores(src, dst)
