"""A stateful model of the token service: authorizations issued, refresh tokens rotated,
reused (old ones presented again), revoked, consents revoked and granted again, time
passing. After every step, every access token ever issued works exactly when the model
says it should: its authorization not revoked (by a reuse, a refresh token's revocation or
a replayed code), the token itself not revoked, not expired, and the consent in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from monespace import Actor
from monespace.catalogue import OAuthError, Scope, pkce_challenge
from monespace.clock import ManualClock
from monespace.testing import reference_app

from .helpers import open_patient, open_space

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REDIRECT = "http://127.0.0.1/callback"
APP = "suivi-poids"
VERIFIER = "v" * 43
ACCESS = timedelta(minutes=10)


@attrs.define
class Family:
    alive: bool = True
    current: str = ""  # the refresh token that works now
    old: list[str] = attrs.field(factory=list)  # refresh tokens rotated away


@attrs.define
class Access:
    family: int
    expires_at: datetime
    revoked: bool = False


class TokenModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(T0)
        self.space = open_space(clock=self.clock)
        self.pid = open_patient(self.space).id
        self.holder = Actor.patient(self.pid)
        reference_app(self.space, APP)
        self.consent = False
        self.families: list[Family] = []
        self.tokens: dict[str, Access] = {}

    def teardown(self) -> None:
        self.space.close()

    def _grant(self) -> None:
        if not self.consent:
            self.space.consents.grant(self.holder, self.pid, APP, {Scope.MESURES_READ})
            self.consent = True

    def _issued(self, family: int, access: str, refresh: str) -> None:
        self.tokens[access] = Access(family, self.clock.now() + ACCESS)
        self.families[family].current = refresh

    @rule(replay=st.booleans())
    def authorize(self, replay: bool) -> None:
        self._grant()
        code = self.space.oauth.authorize(
            self.holder,
            self.pid,
            client_id=APP,
            redirect_uri=REDIRECT,
            scopes={Scope.MESURES_READ},
            code_challenge=pkce_challenge(VERIFIER),
        )
        exchange = {
            "client_id": APP,
            "code": code.code,
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
        }
        tokens = self.space.oauth.exchange(**exchange)
        self.families.append(Family())
        self._issued(len(self.families) - 1, tokens.access_token, tokens.refresh_token)
        if replay:
            with pytest.raises(OAuthError, match="invalid_grant"):
                self.space.oauth.exchange(**exchange)
            self.families[-1].alive = False

    def _refresh(self, number: int, token: str) -> None:
        family = self.families[number]
        works = family.alive and token == family.current and self.consent
        if not works:
            with pytest.raises(OAuthError, match="invalid_grant"):
                self.space.oauth.refresh(client_id=APP, refresh_token=token)
            if token != family.current:
                family.alive = False  # a reuse revokes the authorization
            return
        tokens = self.space.oauth.refresh(client_id=APP, refresh_token=token)
        family.old.append(family.current)
        self._issued(number, tokens.access_token, tokens.refresh_token)

    @initialize()
    def an_authorization_refreshed_once(self) -> None:
        """Every run starts with a rotated refresh token, so that short runs reach reuses."""
        self.authorize(replay=False)
        self._refresh(0, self.families[0].current)

    @precondition(lambda self: self.families)
    @rule(data=st.data())
    def refresh(self, data: st.DataObject) -> None:
        number = data.draw(st.integers(0, len(self.families) - 1))
        self._refresh(number, self.families[number].current)

    @precondition(lambda self: any(f.old and f.alive for f in self.families))
    @rule(data=st.data())
    def reuse(self, data: st.DataObject) -> None:
        numbers = [n for n, f in enumerate(self.families) if f.old and f.alive]
        number = data.draw(st.sampled_from(numbers))
        self._refresh(number, data.draw(st.sampled_from(self.families[number].old)))

    @precondition(lambda self: self.tokens)
    @rule(data=st.data())
    def revoke_access(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(sorted(self.tokens)))
        self.space.oauth.revoke(client_id=APP, token=token)
        self.tokens[token].revoked = True

    @precondition(lambda self: self.families)
    @rule(data=st.data())
    def revoke_refresh(self, data: st.DataObject) -> None:
        family = self.families[data.draw(st.integers(0, len(self.families) - 1))]
        self.space.oauth.revoke(client_id=APP, token=family.current)
        family.alive = False

    @precondition(lambda self: self.consent)
    @rule()
    def revoke_consent(self) -> None:
        self.space.consents.revoke(self.holder, self.pid, APP)
        self.consent = False

    @rule()
    def grant_again(self) -> None:
        self._grant()

    @rule(minutes=st.sampled_from([1, 4, 11]))
    def wait(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @invariant()
    def every_access_token_works_exactly_when_it_should(self) -> None:
        now = self.clock.now()
        for token, access in self.tokens.items():
            valid = (
                self.families[access.family].alive
                and not access.revoked
                and now < access.expires_at
            )
            try:
                actor = self.space.oauth.actor(token)
            except OAuthError:
                assert not valid
                continue
            assert valid
            assert actor.on_behalf_of == self.pid
            # The token stands for the app; the consent is the policy's to check.
            allowed = self.space.access.explain(actor, "measure.read", patient_id=self.pid).allowed
            assert allowed == self.consent
            seen = self.space.oauth.introspect(client_id=APP, token=token)
            assert seen.active == self.consent


# A fifth of the profile's runs: each step checks every token issued so far, through the
# token service, the policy and introspection.
TokenModel.TestCase.settings = settings(
    settings.get_profile("stateful"),
    max_examples=max(5, settings.default.max_examples // 5),
    stateful_step_count=30,
)
test_the_token_service_against_its_model = TokenModel.TestCase
