"""The sandbox: a temporary space on loopback, and the vendor's command run against it.

:func:`run` builds an in-memory space with synthetic patients (one of them, the
*sandbox patient*, has a dozen documents and a weight series), references a test app with
:func:`monespace.testing.reference_app` (its declared scopes and redirect URI), serves the
demo server behind the :class:`~monespace.conformance._recorder.Recorder` on
``127.0.0.1`` and a free port, runs the command with the sandbox's parameters in its
environment (:data:`ENVIRONMENT`), stops the server, and judges what the app did.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import IO, Final

from .. import _space
from .._apps import reference_app
from ..accounts import Contact, PatientIdentity
from ..actors import Actor
from ..errors import ConfigurationError, ValidationError
from ..identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from ..record import TRE_A05_TYPE, Code
from ..synth import synthetic_identities
from ._criteria import Evidence, judge
from ._recorder import SANDBOX_AUTHORIZE_PATH, Recorder, Scenario
from ._report import Report

__all__ = ["DEFAULT_SCOPES", "ENVIRONMENT", "run"]

#: The scopes the test app declares unless told otherwise.
DEFAULT_SCOPES: Final = ("documents.read", "mesures.read", "mesures.write")
#: The redirect URI registered for the test app unless told otherwise (nothing listens
#: there: the app reads the code from the sandbox's redirect, as from its own callback).
REDIRECT_URI: Final = "http://127.0.0.1/conformance/callback"
CLIENT_ID: Final = "conformance-app"
_OPERATOR: Final = Actor.system("conformance-sandbox")

#: The environment the vendor's command receives, and what each variable holds.
ENVIRONMENT: Final[Mapping[str, str]] = {
    "MONESPACE_BASE_URL": "the sandbox server, http://127.0.0.1:PORT (the API is below /api/v1)",
    "MONESPACE_CLIENT_ID": "the test app's client id",
    "MONESPACE_REDIRECT_URI": "the (first) redirect URI registered for the test app",
    "MONESPACE_SCOPES": "the scopes the test app declared, separated by spaces",
    "MONESPACE_SANDBOX_AUTHORIZE_URL": (
        "the sandbox's stand-in for the patient's browser: send it the query of your "
        "authorization URL; it answers 303 to your redirect URI with the code (or the error)"
    ),
    "MONESPACE_SANDBOX": "1: the server is the conformance sandbox",
}


def _activate(space: _space.Space, identity: PatientIdentity) -> str:
    accounts = space.accounts
    traits = identity.ins.traits
    if traits is None:  # synthetic identities always carry their traits
        raise ValueError("a sandbox patient needs the INS traits")
    patient = accounts.register_patient(_OPERATOR, identity)
    accounts.invite(_OPERATOR, patient.id)
    code = accounts.issue_code(_OPERATOR, patient.id, send=False)
    accounts.activate(
        nir=identity.ins.matricule.value,
        code=code,
        vitale_serial=identity.vitale_serial or "",
        birth_date=traits.birth_date,
    )
    return patient.id


def _sandbox_patient() -> PatientIdentity:
    birth = date(1984, 7, 12)
    nir = NIR.build("F", birth.year % 100, birth.month, "75", "056", 901)
    traits = INSTraits(
        birth_name="BAC-A-SABLE",
        first_given_name="CAMILLE",
        birth_date=birth,
        sex="F",
        birth_place_code="75056",
    )
    return PatientIdentity(
        INS(nir, INS_NIR_TEST_OID, traits),
        Contact(email="bac-a-sable@example.org"),
        vitale_serial="9000000901",
    )


def build_space(
    scopes: Iterable[str], redirect_uris: Sequence[str] = (REDIRECT_URI,)
) -> tuple[_space.Space, str]:
    """A memory space with synthetic patients and the referenced test app; the id of the
    sandbox patient who will connect it.

    :raises ValidationError: a redirect URI the référencement refuses (not ``https://``,
        nor loopback ``http://``; a fragment).
    """
    space = _space.open("memory://", load_entrypoints=False)
    try:
        for identity in synthetic_identities(3, seed=14):
            _activate(space, identity)
        patient_id = _activate(space, _sandbox_patient())
        me = Actor.patient(patient_id)
        for n in range(12):
            space.record.add_document(
                me,
                patient_id,
                f"Note de test {n + 1}\n".encode(),
                media_type="text/plain",
                type_code=Code("DOCPAT01", TRE_A05_TYPE),
                title=f"Note de test {n + 1}",
            )
        for kg in (71.4, 71.0, 70.6):
            space.measures.add(me, patient_id, "weight", kg)
        reference_app(
            space,
            CLIENT_ID,
            scopes=scopes,
            redirect_uris=tuple(redirect_uris),
            name="Application en test",
            publisher="Éditeur en test de conformité",
        )
    except BaseException:
        space.close()
        raise
    return space, patient_id


@contextmanager
def _serving(recorder: Recorder) -> Iterator[str]:
    import uvicorn  # noqa: PLC0415 - the server's extra, needed only while serving

    from ..server import listen  # noqa: PLC0415 - the server's extra

    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(recorder, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def run(
    command: Sequence[str],
    *,
    scopes: Iterable[str] = DEFAULT_SCOPES,
    redirect_uris: Sequence[str] = (REDIRECT_URI,),
    timeout: float = 60.0,
    scenario: Scenario | None = None,
    stdout: IO[str] | int | None = None,
    stderr: IO[str] | int | None = None,
) -> Report:
    """Run *command* against a fresh sandbox and judge what it did.

    :param command: the vendor's command and its arguments (run without a shell).
    :param scopes: the scopes the test app declares.
    :param redirect_uris: the redirect URIs registered for it (exact match); the first is
        ``MONESPACE_REDIRECT_URI``.
    :param timeout: seconds after which the command is stopped (and the optional criterion
        ``exits-cleanly`` fails).
    :param scenario: when the faults happen (:class:`Scenario`).
    :param stdout: where the command's output goes (inherited by default).
    :param stderr: where the command's errors go (inherited by default).
    :raises FileNotFoundError: when the command cannot be found.
    :raises ConfigurationError: without the ``server`` extra (starlette, uvicorn).
    :raises ValidationError: a redirect URI the référencement refuses.
    """
    try:
        import uvicorn  # noqa: F401, PLC0415 - only checked here, used by _serving

        from ..server import create_app  # noqa: PLC0415 - the server's extra
    except ImportError:
        raise ConfigurationError(
            "the conformance kit serves a sandbox: pip install 'monespace[server]'"
        ) from None
    declared = tuple(sorted(set(scopes)))
    if not redirect_uris:
        raise ValidationError("the test app needs a redirect URI")
    space, patient_id = build_space(declared, redirect_uris)
    try:
        recorder = Recorder(
            create_app(space, secure_cookies=False),
            space,
            patient_id=patient_id,
            client_id=CLIENT_ID,
            scenario=scenario,
        )
        started = time.monotonic()
        with _serving(recorder) as base_url:
            env = {
                **os.environ,
                "MONESPACE_BASE_URL": base_url,
                "MONESPACE_CLIENT_ID": CLIENT_ID,
                "MONESPACE_REDIRECT_URI": redirect_uris[0],
                "MONESPACE_SCOPES": " ".join(declared),
                "MONESPACE_SANDBOX_AUTHORIZE_URL": base_url + SANDBOX_AUTHORIZE_PATH,
                "MONESPACE_SANDBOX": "1",
            }
            exit_status: int | None
            with subprocess.Popen(list(command), env=env, stdout=stdout, stderr=stderr) as process:  # noqa: S603 - the vendor's own command, by design
                try:
                    exit_status = process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    exit_status = None
        duration = time.monotonic() - started
        exchanges = tuple(recorder.exchanges)
        expiries = {
            e.token: expiry
            for e in exchanges
            if e.token and (expiry := recorder.expiry_of(e.token)) is not None
        }
        evidence = Evidence(exchanges, frozenset(declared), expiries, exit_status)
        return Report(
            command=tuple(command),
            base_url=base_url,
            client_id=CLIENT_ID,
            declared_scopes=declared,
            verdicts=tuple(judge(evidence)),
            exchanges=exchanges,
            exit_status=exit_status,
            duration=duration,
        )
    finally:
        space.close()
