"""Real SMTP servers on loopback for the plugin's tests.

``smtp_server`` starts an aiosmtpd server on 127.0.0.1 (a free port) whose handler records
what it accepts and can be told to fail: ``fail_data`` replies to the next DATA commands
(``451`` then recovery), ``refuse_rcpt`` refuses recipients. ``tls`` is a throwaway
certificate authority and a server certificate for 127.0.0.1, made with ``cryptography``, so
that STARTTLS is exercised for real, with the client verifying the server.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import attrs
import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, settings

import monespace
from monespace import Actor, ActorKind, ManualClock
from monespace.access import Professional
from monespace.accounts import Contact, PatientIdentity
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, RPPS, INSTraits
from monespace.transport import MemoryTransport

# The Hypothesis profiles of the project's own tests/conftest.py, for when the plugin's tests
# run alone: "ci" (the default), "fast" (FAST=1) and "thorough"; HYPOTHESIS_PROFILE chooses,
# as it does for the whole suite.
settings.register_profile(
    "ci", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("fast", max_examples=15, deadline=None)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("fast" if os.environ.get("FAST") else "ci")
)

OPERATOR = Actor.system("test")
HOLDER_NIR = "279035121518989"
HOLDER_OID = "1.2.250.1.213.1.4.10"
PATIENT_ADDRESS = f"{HOLDER_NIR}@patient.mssante.fr"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
MARKER = "CANARI-7f3a9c-ne-doit-jamais-apparaitre"
SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
CDA_FILE = SHARED_DATA / "cisis" / "cda" / "BIO-CR-BIO_2024.01_DEP-CCU-tout-structure.xml"
needs_cda = pytest.mark.skipif(not CDA_FILE.is_file(), reason=f"no {CDA_FILE}")


def rpps(n: int) -> str:
    return RPPS.build(f"10{n:08d}").value


def pro(n: int = 1) -> Actor:
    return Actor(ActorKind.PROFESSIONAL, rpps(n))


def pro_address(n: int) -> str:
    return f"dr.medecin{n}@ch-test.mssante.fr"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- a certificate authority for STARTTLS ----------------------------------------------------


@attrs.frozen
class Pki:
    cafile: Path
    server_context: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cafile))


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("monespace-smtp test CA"))
        .issuer_name(_name("monespace-smtp test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cafile = folder / "ca.pem"
    cafile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certfile = folder / "server.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile = folder / "server.key"
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return Pki(cafile, context)


# --- a recording SMTP server -----------------------------------------------------------------


@attrs.frozen
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


class Recorder:
    """An aiosmtpd handler that keeps what it accepts, and fails when told to."""

    def __init__(self) -> None:
        self.accepted: list[Received] = []
        self.fail_data: list[str] = []
        self.refuse_rcpt: str | None = None
        self.data_commands = 0
        #: The client end (address, port) of each connection that sent data.
        self.sessions: set[object] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_rcpt is not None:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        self.sessions.add(session.peer)
        if self.fail_data:
            return self.fail_data.pop(0)
        self.accepted.append(
            Received(
                envelope.mail_from,
                tuple(envelope.rcpt_tos),
                envelope.original_content or envelope.content,
                session.ssl is not None,
            )
        )
        return "250 2.0.0 OK"

    def with_message_id(self, message_id: str) -> list[Received]:
        return [r for r in self.accepted if r.message["Message-ID"] == message_id]


@attrs.define
class Server:
    host: str
    port: int
    recorder: Recorder
    controller: Controller

    def stop(self) -> None:
        self.controller.stop()


def start_server(port: int | None = None, *, tls_context: ssl.SSLContext | None = None) -> Server:
    recorder = Recorder()
    port = port or free_port()
    options = {"tls_context": tls_context} if tls_context is not None else {}
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return Server("127.0.0.1", port, recorder, controller)


@pytest.fixture
def smtp_server() -> Iterator[Server]:
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def tls_server(tls: Pki) -> Iterator[Server]:
    server = start_server(tls_context=tls.server_context)
    yield server
    server.stop()


# --- a space -----------------------------------------------------------------------------------


def holder_identity(email: str | None = "patient@example.org") -> PatientIdentity:
    traits = INSTraits(
        birth_name="PAT-TROIS", first_given_name="DOMINIQUE", birth_date=date(1979, 3, 15), sex="F"
    )
    return PatientIdentity(INS(HOLDER_NIR, HOLDER_OID, traits), Contact(email=email))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, 9, tzinfo=UTC))


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/space.db"


@pytest.fixture
def space(url: str, clock: ManualClock) -> Iterator[monespace.Space]:
    with monespace.open(
        url,
        key_provider=StaticKeyProvider(MasterKey.generate()),
        clock=clock,
        transports={"email": MemoryTransport()},
    ) as opened:
        for n in (1, 2):
            opened.access.register_professional(
                OPERATOR, Professional(rpps(n), "10", f"Dr Médecin {n}", mssante=pro_address(n))
            )
        yield opened


@pytest.fixture
def holder(space: monespace.Space):
    patient = space.accounts.register_patient(OPERATOR, holder_identity())
    space.accounts.create_space(OPERATOR, patient.id)
    return patient


@pytest.fixture(autouse=True)
def _isolated_key_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test may touch the developer's own key file."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv("MONESPACE_MASTER_KEY", raising=False)
    monkeypatch.delenv("MONESPACE_KEY_FILE", raising=False)
