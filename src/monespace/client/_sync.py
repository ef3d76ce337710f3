"""The blocking client. Its twin :class:`~monespace.client.AsyncClient` has the same methods
(``async``), over the same sans-I/O core.

.. versionadded:: 0.1
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from types import TracebackType
from typing import Any

import httpx

from ..errors import ConfigurationError
from . import _routes as routes
from ._core import Call, Core, RetryBudget, RetryPolicy, next_offset
from ._models import (
    CatalogueEntry,
    Code,
    Consent,
    Document,
    DocumentPage,
    Event,
    HistoryEntry,
    InboxPage,
    Measure,
    ServerMetadata,
    Session,
    SessionInfo,
    Thread,
)
from ._oauth import AuthorizationRequest, TokenHolder, TokenSet, code_form, revoke_form
from ._shared import metadata_from, user_agent

__all__ = ["Client"]


class Client:
    """A client of a monespace server's JSON API (``/api/v1``) and OAuth endpoints.

    :param base_url: the server, ``https://monespace.example`` (the API is below
        ``/api/v1``).
    :param token: a bearer token: a session's (set by :meth:`login_patient`) or an app's.
    :param tokens: an app's tokens, refreshed before they expire (needs *client_id*; the
        token endpoint is read from the server's metadata unless *token_endpoint* is given).
    :param retry: when to try again (:class:`RetryPolicy`).
    :param budget: the retries allowed across the client's calls (default
        ``RetryBudget()``: ten in a burst, then one per five calls).
    :param transport: an httpx transport (``httpx.MockTransport`` in tests,
        ``httpx.ASGITransport`` for an app in the same process).
    :param sleep: how to wait between attempts (``time.sleep``).
    :param rng: the source of the backoff's jitter.
    :param clock: a callable returning the current aware datetime, for ``Retry-After`` dates
        (the token holder's clock, or the wall clock, by default).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        tokens: TokenHolder | None = None,
        client_id: str | None = None,
        token_endpoint: str | None = None,
        retry: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._core = Core(
            base_url,
            retry=retry or RetryPolicy(),
            budget=budget if budget is not None else RetryBudget(),
            token=token,
            tokens=tokens,
            client_id=client_id,
            token_endpoint=token_endpoint,
            rng=rng or random.SystemRandom(),
            clock=clock,
        )
        self._http = httpx.Client(
            transport=transport,
            timeout=timeout,
            headers={"user-agent": user_agent()},
            follow_redirects=False,
        )
        self._sleep = sleep
        self._refresh_lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    @property
    def token(self) -> str | None:
        """The bearer token sent with each call, if any."""
        return self._core.bearer()

    @property
    def tokens(self) -> TokenHolder | None:
        """The app's token holder, if any."""
        return self._core.tokens

    # --- the one loop --------------------------------------------------------------------

    def _send(self, call: Call) -> httpx.Response:
        exchange = self._core.exchange(call)
        while True:
            if exchange.wants_refresh():
                self._refresh(force=exchange.force_refresh)
                exchange.refreshed_tokens()
            request = exchange.request()
            try:
                response = self._http.send(request)
            except httpx.RequestError as exc:
                delay = exchange.failed(exc)
            else:
                answer = exchange.answered(response)
                if answer is None:
                    return response
                delay = answer
            self._sleep(delay)

    def request(self, call: Call) -> Any:
        """Make *call* (retries, refresh and errors included) and return its JSON, for
        routes this class has no method for (``Call("GET", "/api/v1/…")``)."""
        return self._core.json(self._send(call))

    # --- sessions ------------------------------------------------------------------------

    def login_patient(self, nir: str, vitale_serial: str, birth_date: date) -> Session:
        """The demo's carte Vitale login; the client then sends the session's token."""
        found = self._core.decode(
            self._send(routes.login_patient(nir, vitale_serial, birth_date)), Session
        )
        self._core.token = found.token
        return found

    def login_professional(self, rpps: str) -> Session:
        """The demo's simulated Pro Santé Connect login (an RPPS number)."""
        found = self._core.decode(self._send(routes.login_professional(rpps)), Session)
        self._core.token = found.token
        return found

    def session(self) -> SessionInfo:
        """The current session."""
        return self._core.decode(self._send(routes.session()), SessionInfo)

    def logout(self) -> None:
        """End the session: its token stops working at once."""
        self._send(routes.logout())
        self._core.token = None

    # --- record --------------------------------------------------------------------------

    def documents_page(
        self, patient_id: str, *, category: str | None = None, offset: int = 0, limit: int = 50
    ) -> DocumentPage:
        """One page of a record's documents, newest first."""
        call = routes.documents_page(patient_id, category=category, offset=offset, limit=limit)
        return self._core.decode(self._send(call), DocumentPage)

    def documents(
        self, patient_id: str, *, category: str | None = None, page_size: int = 50
    ) -> Iterator[Document]:
        """Every document of a record the caller may see, page after page, to the end."""
        offset: int | None = 0
        while offset is not None:
            page = self.documents_page(
                patient_id, category=category, offset=offset, limit=page_size
            )
            yield from page.documents
            offset = next_offset(page.offset, len(page.documents), page.total)

    def search_documents(
        self,
        patient_id: str,
        *,
        text: str | None = None,
        category: str | None = None,
        type_code: str | None = None,
        author_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        include_replaced: bool = False,
        page_size: int = 50,
    ) -> Iterator[Document]:
        """Every document matching a search, to the end (the words travel in the body)."""
        criteria = routes.search_criteria(
            text=text,
            category=category,
            type_code=type_code,
            author_id=author_id,
            since=since,
            until=until,
            include_replaced=include_replaced,
        )
        offset: int | None = 0
        while offset is not None:
            call = routes.search_page(patient_id, criteria, offset=offset, limit=page_size)
            page = self._core.decode(self._send(call), DocumentPage)
            yield from page.documents
            offset = next_offset(page.offset, len(page.documents), page.total)

    def document(self, patient_id: str, document_id: str) -> Document:
        """A document's metadata."""
        return self._core.decode(self._send(routes.document(patient_id, document_id)), Document)

    def document_content(self, patient_id: str, document_id: str) -> bytes:
        """A document's bytes."""
        return self._send(routes.document_content(patient_id, document_id)).content

    def add_document(
        self,
        patient_id: str,
        content: bytes,
        *,
        media_type: str,
        type_code: Code | None = None,
        title: str | None = None,
        comments: str | None = None,
    ) -> Document:
        """Add a document to a record."""
        call = routes.add_document(
            patient_id,
            content,
            media_type=media_type,
            type_code=type_code,
            title=title,
            comments=comments,
        )
        return self._core.decode(self._send(call), Document)

    def measures(
        self,
        patient_id: str,
        kind: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Measure]:
        """A series of measures of one kind (``weight``, ``blood_pressure``…)."""
        call = routes.measures(patient_id, kind, since=since, until=until)
        return self._core.decode(self._send(call), list[Measure])

    def add_measure(
        self,
        patient_id: str,
        kind: str,
        value: float,
        *,
        unit: str | None = None,
        measured_at: datetime | None = None,
        second: float | None = None,
    ) -> Measure:
        """Record a health measure."""
        call = routes.add_measure(
            patient_id, kind, value, unit=unit, measured_at=measured_at, second=second
        )
        return self._core.decode(self._send(call), Measure)

    # --- agenda, access history, messages -------------------------------------------------

    def events(
        self, patient_id: str, *, from_: date | None = None, until: date | None = None
    ) -> list[Event]:
        """The agenda's events starting between two days."""
        call = routes.events(patient_id, from_=from_, until=until)
        return self._core.decode(self._send(call), list[Event])

    def add_event(
        self,
        patient_id: str,
        *,
        kind: str,
        starts_at: datetime,
        ends_at: datetime | None = None,
        title: str | None = None,
        place: str | None = None,
        status: str = "planned",
    ) -> Event:
        """Add an event to the agenda."""
        call = routes.add_event(
            patient_id,
            kind=kind,
            starts_at=starts_at,
            ends_at=ends_at,
            title=title,
            place=place,
            status=status,
        )
        return self._core.decode(self._send(call), Event)

    def event(self, patient_id: str, event_id: str) -> Event:
        """One event of the agenda."""
        return self._core.decode(self._send(routes.event(patient_id, event_id)), Event)

    def reschedule_event(
        self,
        patient_id: str,
        event_id: str,
        *,
        starts_at: datetime,
        ends_at: datetime | None = None,
    ) -> Event:
        """Move an event to another time."""
        call = routes.reschedule_event(patient_id, event_id, starts_at=starts_at, ends_at=ends_at)
        return self._core.decode(self._send(call), Event)

    def cancel_event(self, patient_id: str, event_id: str) -> Event:
        """Cancel an event."""
        call = routes.event_change(patient_id, event_id, "cancel")
        return self._core.decode(self._send(call), Event)

    def mark_event_done(self, patient_id: str, event_id: str) -> Event:
        """Record that an event took place."""
        call = routes.event_change(patient_id, event_id, "done")
        return self._core.decode(self._send(call), Event)

    def access_history(self, patient_id: str) -> list[HistoryEntry]:
        """Who did what in the space, in plain words, newest first."""
        call = routes.access_history(patient_id)
        return self._core.decode(self._send(call), list[HistoryEntry])

    def threads(
        self, patient_id: str, *, archived: bool = False, page_size: int = 50
    ) -> Iterator[Thread]:
        """Every conversation of a mailbox, page after page, to the end."""
        offset: int | None = 0
        while offset is not None:
            call = routes.threads_page(
                patient_id, archived=archived, offset=offset, limit=page_size
            )
            page = self._core.decode(self._send(call), InboxPage)
            yield from page.threads
            offset = next_offset(page.offset, len(page.threads), page.total)

    # --- apps: the public catalogue, the patient's consents ------------------------------

    def catalogue(
        self, *, text: str | None = None, category: str | None = None
    ) -> list[CatalogueEntry]:
        """The referenced services, searchable by words of their name or publisher and by
        category (no login needed)."""
        call = routes.catalogue(text=text, category=category)
        return self._core.decode(self._send(call), list[CatalogueEntry])

    def consents(self, patient_id: str) -> list[Consent]:
        """The apps the patient connected, current and past (a patient's session)."""
        return self._core.decode(self._send(routes.consents(patient_id)), list[Consent])

    def narrow_consent(self, patient_id: str, client_id: str, scopes: Iterable[str]) -> Consent:
        """Narrow an app's consent to fewer scopes (widening goes through the app)."""
        call = routes.narrow_consent(patient_id, client_id, sorted(scopes))
        return self._core.decode(self._send(call), Consent)

    def revoke_consent(self, patient_id: str, client_id: str) -> None:
        """Withdraw an app's consent: its tokens stop working at once."""
        self._send(routes.revoke_consent(patient_id, client_id))

    # --- OAuth ---------------------------------------------------------------------------

    def server_metadata(self) -> ServerMetadata:
        """The authorization server's metadata (RFC 8414)."""
        return metadata_from(
            self._core.json(self._send(routes.server_metadata())), issuer=self._core.base_url
        )

    def _token_endpoint(self) -> str:
        if self._core.token_endpoint is None:
            self._core.token_endpoint = self.server_metadata().token_endpoint
        return self._core.token_endpoint

    def start_authorization(
        self, *, client_id: str, redirect_uri: str, scopes: Iterable[str]
    ) -> AuthorizationRequest:
        """Begin an authorization: send the patient's browser to the returned request's
        ``url``, and keep the request (its state and PKCE verifier) for
        :meth:`finish_authorization`. The endpoint comes from the server's metadata."""
        endpoint = self.server_metadata().authorization_endpoint
        return AuthorizationRequest.build(
            endpoint, client_id=client_id, redirect_uri=redirect_uri, scopes=scopes
        )

    def finish_authorization(self, request: AuthorizationRequest, redirect_url: str) -> TokenSet:
        """Check the URL the browser came back to (its state) and exchange its code for
        tokens, which the client then sends and refreshes.

        :raises OAuthError: the patient refused (``access_denied``), the state does not
            match, or the server refused the code (:class:`InvalidTokenError`).
        """
        form = request.code_form(redirect_url)
        return self._exchange(form)

    def exchange_code(
        self, code: str, *, verifier: str, redirect_uri: str, client_id: str
    ) -> TokenSet:
        """Exchange an authorization code for tokens (RFC 6749 section 4.1.3 with the PKCE
        verifier). The client then sends them, and refreshes them before they expire.

        To persist refreshed tokens, give the client a :class:`TokenHolder` with
        ``on_update`` at construction: the exchange updates it.
        """
        form = code_form(code, verifier=verifier, redirect_uri=redirect_uri, client_id=client_id)
        return self._exchange(form)

    def _exchange(self, form: dict[str, str]) -> TokenSet:
        response = self._send(routes.token(self._token_endpoint(), form))
        now = self._core.now()
        tokens = TokenSet.from_response(self._core.json(response), now=now)
        self._core.client_id = form["client_id"]
        if self._core.tokens is None:
            self._core.tokens = TokenHolder(tokens, clock=self._core.clock)
        else:
            self._core.tokens.update(tokens, refreshed=False)
        return tokens

    def refresh(self) -> TokenSet:
        """Refresh the tokens now (the client does it by itself before they expire)."""
        return self._refresh(force=True)

    def _refresh(self, *, force: bool) -> TokenSet:
        holder = self._core.tokens
        if holder is None:
            raise ConfigurationError("there are no tokens to refresh")
        before = holder.tokens
        with self._refresh_lock:
            # Another thread may have refreshed while this one waited for the lock.
            if holder.tokens is not before or not (force or holder.needs_refresh()):
                return holder.tokens
            self._token_endpoint()
            response = self._send(self._core.refresh_call())
            tokens = TokenSet.from_response(
                self._core.json(response), now=holder.now(), previous=before
            )
            holder.update(tokens)
            return tokens

    def revoke(self, token: str | None = None, *, hint: str | None = None) -> None:
        """Revoke a token (RFC 7009); by default the refresh token, which ends the whole
        grant, and then the access token."""
        endpoint = self._revocation_endpoint()
        client_id = self._core.client_id
        holder = self._core.tokens
        if client_id is None:
            raise ConfigurationError("revoking needs client_id= (or a code exchanged first)")
        if token is not None:
            self._send(routes.revoke(endpoint, revoke_form(token, client_id=client_id, hint=hint)))
            return
        if holder is None:
            raise ConfigurationError("there are no tokens to revoke")
        current = holder.tokens
        if current.refresh_token is not None:
            form = revoke_form(current.refresh_token, client_id=client_id, hint="refresh_token")
            self._send(routes.revoke(endpoint, form))
        form = revoke_form(current.access_token, client_id=client_id, hint="access_token")
        self._send(routes.revoke(endpoint, form))

    def _revocation_endpoint(self) -> str:
        endpoint = self.server_metadata().revocation_endpoint
        if endpoint is None:
            raise ConfigurationError("the server publishes no revocation_endpoint")
        return endpoint

    def introspect(self, token: str, *, client_id: str) -> dict[str, Any]:
        """What the server knows of a token (RFC 7662): ``{"active": false}`` for a dead one."""
        endpoint = self.server_metadata().introspection_endpoint
        if endpoint is None:
            raise ConfigurationError("the server publishes no introspection_endpoint")
        form = {"token": token, "client_id": client_id}
        found = self._core.json(self._send(routes.introspect(endpoint, form)))
        return dict(found) if isinstance(found, dict) else {}
