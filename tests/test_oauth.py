"""The token service's pure rules (PKCE, scopes, token states, settings) and what the space
does with expired codes and tokens."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from monespace import Actor, Settings
from monespace.catalogue import (
    OAuthError,
    OAuthSettings,
    Scope,
    TokenState,
    parse_scopes,
    pkce_challenge,
    pkce_matches,
    token_state,
    valid_challenge,
)

from .test_oauth_server import REDIRECT, reference
from .test_server_world import build_world

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UNRESERVED = string.ascii_letters + string.digits + "-._~"
verifiers = st.text(alphabet=UNRESERVED, min_size=43, max_size=128)


@given(verifiers)
@example("a" * 43)
def test_a_verifier_matches_its_own_s256_challenge_only(verifier):
    challenge = pkce_challenge(verifier)
    assert valid_challenge(challenge)
    assert pkce_matches(challenge, verifier)
    assert not pkce_matches(challenge, verifier[:-1] + ("b" if verifier[-1] != "b" else "c"))


def test_the_rfc7636_example():
    """Appendix B of RFC 7636."""
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # from the RFC, not a secret
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.mark.parametrize("verifier", [None, "", "short", "a" * 129, "é" * 43, "a b" * 20])
def test_malformed_verifiers_never_match(verifier):
    assert not pkce_matches(pkce_challenge("a" * 43), verifier)


def test_scopes_are_known_words_and_at_least_one():
    known = [str(s) for s in Scope]
    assert parse_scopes("mesures.read  agenda.read", known) == {"mesures.read", "agenda.read"}
    for bad in (None, "", "   ", "mesures.read profil.read", "x" * 65, "mesures.read\x00"):
        with pytest.raises(OAuthError) as caught:
            parse_scopes(bad, known)
        assert caught.value.error == "invalid_scope"


def test_token_states():
    expires = T0 + timedelta(minutes=10)
    assert token_state(T0, expires, None) is TokenState.VALID
    assert token_state(expires, expires, None) is TokenState.EXPIRED
    assert token_state(T0, expires, None, T0) is TokenState.ROTATED
    assert token_state(expires + timedelta(days=1), expires, None, T0) is TokenState.ROTATED
    assert token_state(T0, expires, T0, T0) is TokenState.REVOKED


def test_lifetimes_are_settings_and_must_be_positive():
    assert Settings().oauth == OAuthSettings()
    assert OAuthSettings().access_lifetime == timedelta(minutes=10)
    with pytest.raises(ValueError, match="'code_lifetime' must be positive"):
        OAuthSettings(code_lifetime=timedelta(0))


def test_the_tick_purges_expired_codes_and_tokens_and_shredding_deletes_them():
    world = build_world()
    space = world.space
    try:
        reference(space, "suivi-poids")
        alice = Actor.patient(world.alice.id)
        space.consents.grant(alice, world.alice.id, "suivi-poids", {Scope.MESURES_READ})
        verifier = "v" * 43
        code = space.oauth.authorize(
            alice,
            world.alice.id,
            client_id="suivi-poids",
            redirect_uri=REDIRECT,
            scopes={Scope.MESURES_READ},
            code_challenge=pkce_challenge(verifier),
        )
        tokens = space.oauth.exchange(
            client_id="suivi-poids", code=code.code, redirect_uri=REDIRECT, code_verifier=verifier
        )
        assert space.oauth.tick(world.clock.now())["oauth_purged"] == 0
        world.clock.advance(timedelta(minutes=11))
        # The code and the access token are gone; the refresh token still works.
        assert space.tick()["oauth_purged"] == 2
        fresh = space.oauth.refresh(client_id="suivi-poids", refresh_token=tokens.refresh_token)
        assert space.oauth.actor(fresh.access_token).on_behalf_of == world.alice.id
        space.accounts.shred(Actor.system("test"), world.alice.id)
        with pytest.raises(OAuthError):
            space.oauth.actor(fresh.access_token)
    finally:
        space.close()
