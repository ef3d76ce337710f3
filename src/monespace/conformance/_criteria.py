"""The conformance criteria, and how each is judged from the recorded exchanges.

Each criterion has an id, a title, whether it is mandatory, and a judge: a function of the
run's :class:`Evidence` that returns a :class:`Verdict` (pass, fail or not observed) with
the observations behind it, each pointing to the exchanges (by their ``seq``) that show it.
A mandatory criterion that was not observed does not pass: the app has to meet the
situation for the kit to say it handles it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Final

import attrs

from ._recorder import Exchange, Fault

__all__ = ["CRITERIA", "Criterion", "Evidence", "Status", "Verdict", "judge"]

#: The tolerance on a wait asked by ``Retry-After``: the clocks of two processes, and the
#: time a request takes to reach the server.
RETRY_AFTER_SLACK: Final = 0.05


class Status(StrEnum):
    """A criterion's outcome."""

    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    NOT_OBSERVED = "not_observed"
    """The app never met the situation (it never authorized, never listed…)."""


@attrs.frozen
class Evidence:
    """What a judge looks at.

    :param exchanges: the app's requests and the sandbox's answers, in order.
    :param declared_scopes: the scopes of the app's convention in the sandbox.
    :param expiries: when each access token (by label) expired, in seconds since the start.
    :param exit_status: the command's exit status, ``None`` when it was stopped at the
        time limit.
    """

    exchanges: Sequence[Exchange]
    declared_scopes: frozenset[str]
    expiries: dict[str, float] = attrs.field(factory=dict)
    exit_status: int | None = 0


@attrs.frozen
class Verdict:
    """A criterion judged: its status and the observations that decided it.

    :param observations: sentences for the vendor's developer, each ending with the
        ``seq`` of the exchanges concerned (``#12``).
    :param exchanges: the ``seq`` of the exchanges concerned.
    """

    status: Status
    observations: tuple[str, ...] = ()
    exchanges: tuple[int, ...] = ()


@attrs.frozen
class Criterion:
    """One conformance criterion.

    :param id: a stable identifier (``pkce-s256``).
    :param title: what an app must do, in one line.
    :param mandatory: whether the kit's exit status depends on it.
    :param judge: how it is judged.
    """

    id: str
    title: str
    mandatory: bool
    judge: Callable[[Evidence], Verdict] = attrs.field(repr=False)


def _refs(exchanges: Sequence[Exchange]) -> str:
    return ", ".join(f"#{e.seq}" for e in exchanges)


def _verdict(failed: list[tuple[str, Exchange]], passed: str, seen: Sequence[Exchange]) -> Verdict:
    if failed:
        return Verdict(
            Status.FAIL,
            tuple(f"{why} (#{e.seq})" for why, e in failed),
            tuple(e.seq for _, e in failed),
        )
    return Verdict(Status.PASS, (f"{passed} ({_refs(seen)})",), tuple(e.seq for e in seen))


def _declared_scopes(evidence: Evidence) -> Verdict:
    asking = [
        e
        for e in evidence.exchanges
        if e.kind == "authorize" or (e.kind == "token" and "scope" in e.params)
    ]
    if not any(e.kind == "authorize" for e in asking):
        return Verdict(Status.NOT_OBSERVED, ("The app never asked for an authorization.",))
    failed = []
    for e in asking:
        extra = sorted(set(e.params.get("scope", "").split()) - evidence.declared_scopes)
        if extra:
            failed.append((f"Asked for scopes beyond its declaration: {' '.join(extra)}", e))
    return _verdict(failed, "Every authorization asked only for declared scopes", asking)


def _pkce(evidence: Evidence) -> Verdict:
    authorizations = [e for e in evidence.exchanges if e.kind == "authorize"]
    exchanges = [
        e
        for e in evidence.exchanges
        if e.kind == "token" and e.params.get("grant_type") == "authorization_code"
    ]
    if not authorizations:
        return Verdict(Status.NOT_OBSERVED, ("The app never asked for an authorization.",))
    failed = []
    for e in authorizations:
        if "code_challenge" not in e.query_keys:
            failed.append(("An authorization request without code_challenge", e))
        elif e.params.get("code_challenge_method") != "S256":
            failed.append(("An authorization request whose code_challenge_method is not S256", e))
    failed.extend(
        ("A code exchanged without its code_verifier", e)
        for e in exchanges
        if "code_verifier" not in e.form_keys
    )
    return _verdict(
        failed,
        "PKCE with S256 on every authorization and code exchange",
        authorizations + exchanges,
    )


def _refresh(evidence: Evidence) -> Verdict:
    xs = evidence.exchanges
    told = [e for e in xs if e.fault == Fault.TOKEN_EXPIRED]
    if not told:
        return Verdict(Status.NOT_OBSERVED, ("No access token expired during the run.",))
    expired = told[0]
    failed = [
        ("Sent again an access token it had been told expired", e)
        for e in xs
        if e.seq > expired.seq and e.token == expired.token
    ]
    failed.extend(
        ("Sent an access token after its expires_in", e)
        for e in xs
        if e.token in evidence.expiries and e.at > evidence.expiries[e.token]
    )
    refresh = next(
        (
            e
            for e in xs
            if e.seq > expired.seq
            and e.kind == "token"
            and e.params.get("grant_type") == "refresh_token"
        ),
        None,
    )
    later_data = [e for e in xs if e.seq > expired.seq and e.kind == "data"]
    if refresh is None:
        if later_data:
            failed.append(
                ("Called the API again without refreshing its expired token", later_data[0])
            )
        else:
            return Verdict(
                Status.NOT_OBSERVED,
                (f"The app did not call again after its token expired (#{expired.seq}).",),
            )
    elif refresh.status != 200:
        failed.append(("Its refresh was refused", refresh))
    if failed:
        return _verdict(failed, "", ())
    assert refresh is not None
    return _verdict(
        [], "Refreshed with its refresh token once its access token expired", [expired, refresh]
    )


def _stops_after_revocation(evidence: Evidence) -> Verdict:
    xs = evidence.exchanges
    refused = next(
        (
            e
            for e in xs
            if e.kind == "data" and e.status == 403 and e.fault == Fault.CONSENT_REVOKED
        ),
        None,
    )
    if refused is None:
        return Verdict(
            Status.NOT_OBSERVED,
            ("The app made no call after the patient revoked the consent.",),
        )
    after = [e for e in xs if e.seq > refused.seq and e.kind == "data"]
    failed = [("Called the patient's data again after a 403 consent not given", e) for e in after]
    return _verdict(failed, "Stopped calling the patient's data after the revocation", [refused])


def _retry_after(evidence: Evidence) -> Verdict:
    xs = evidence.exchanges
    asked = [e for e in xs if e.retry_after is not None and e.status in {429, 503}]
    if not asked:
        return Verdict(Status.NOT_OBSERVED, ("No 429 or 503 was answered.",))
    failed = []
    for e in asked:
        following = next((n for n in xs if n.seq > e.seq and n.kind == "data"), None)
        assert e.retry_after is not None
        if following is not None:
            waited = following.at - e.answered
            if waited < e.retry_after - RETRY_AFTER_SLACK:
                failed.append(
                    (
                        f"Called again {waited:.2f} s after a {e.status} that asked to wait "
                        f"{e.retry_after:g} s",
                        following,
                    )
                )
    return _verdict(failed, "Waited what Retry-After asked after each 429 and 503", asked)


def _no_tokens_in_urls(evidence: Evidence) -> Verdict:
    xs = evidence.exchanges
    if not xs:
        return Verdict(Status.NOT_OBSERVED, ("The app made no request.",))
    failed = [("A token or a PKCE verifier in the URL", e) for e in xs if e.secret_in_url]
    if failed:
        return _verdict(failed, "", ())
    return Verdict(Status.PASS, (f"No secret in the URL of any of its {len(xs)} requests.",), ())


def _paginates(evidence: Evidence) -> Verdict:
    pages = [e for e in evidence.exchanges if e.listing is not None]
    if not pages:
        return Verdict(Status.NOT_OBSERVED, ("The app never listed the patient's documents.",))
    last = [e for e in pages if e.listing and e.listing[0] + e.listing[1] >= e.listing[2]]
    if not last:
        return Verdict(
            Status.FAIL,
            (f"Never reached the last page of a listing ({_refs(pages)})",),
            tuple(e.seq for e in pages),
        )
    return _verdict([], "Followed the listing to its last page", pages)


def _user_agent(evidence: Evidence) -> Verdict:
    xs = evidence.exchanges
    if not xs:
        return Verdict(Status.NOT_OBSERVED, ("The app made no request.",))
    failed = [("A request without a User-Agent", e) for e in xs if "user-agent" not in e.headers]
    if failed:
        return _verdict(failed, "", ())
    return Verdict(Status.PASS, ("Every request named its client in User-Agent.",), ())


def _exits(evidence: Evidence) -> Verdict:
    if evidence.exit_status is None:
        return Verdict(Status.FAIL, ("The command was still running at the time limit.",))
    if evidence.exit_status != 0:
        return Verdict(Status.FAIL, (f"The command exited with status {evidence.exit_status}.",))
    return Verdict(Status.PASS, ("The command ended by itself, with status 0.",))


#: The criteria, in the order of the report.
CRITERIA: Final[tuple[Criterion, ...]] = (
    Criterion("declared-scopes", "Asks only for the scopes it declared", True, _declared_scopes),
    Criterion("pkce-s256", "Uses PKCE with S256", True, _pkce),
    Criterion("no-tokens-in-urls", "Never puts a token in a URL", True, _no_tokens_in_urls),
    Criterion(
        "refresh-on-expiry", "Refreshes its access token before or on expiry", True, _refresh
    ),
    Criterion("retry-after", "Honours Retry-After on 429 and 503", True, _retry_after),
    Criterion(
        "stops-after-revocation",
        "Stops calling once the patient revoked the consent",
        True,
        _stops_after_revocation,
    ),
    Criterion("paginates-to-the-end", "Follows a listing to its last page", True, _paginates),
    Criterion("user-agent", "Names itself in a User-Agent header", False, _user_agent),
    Criterion("exits-cleanly", "Ends by itself once access ends, with status 0", False, _exits),
)


def judge(evidence: Evidence) -> list[tuple[Criterion, Verdict]]:
    """Every criterion of :data:`CRITERIA` judged on *evidence*."""
    return [(criterion, criterion.judge(evidence)) for criterion in CRITERIA]
