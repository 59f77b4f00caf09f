"""SMTP over TLS that verifies the server, against a real aiosmtpd on loopback with a
certificate made for the test: STARTTLS and implicit TLS deliver when the certificate is
trusted (SMTP_CA_FILE), nothing goes to a server whose certificate is not, and a login in
clear is refused before anything starts."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from activities.mail import (
    MailDeferred,
    SmtpTransport,
    build_message,
    render,
    template_environment,
    variables,
)
from infra.settings import Settings, SettingsError, load_settings
from models.activities import Mail, MailContext, MailTemplate
from models.journey import Contact
from tests.conftest import Mailbox, deal, free_port

TO = Contact(name="Kenji Mori", email="kenji@acme.example")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (cert file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture(params=["starttls", "implicit"])
def tls_server(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path]
) -> Iterator[tuple[str, Mailbox, int]]:
    mode, mailbox, port = request.param, Mailbox(), free_port()
    context = server_context(certificate)
    if mode == "starttls":
        controller = Controller(
            mailbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
        )
    else:
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, ssl_context=context)
    controller.start()
    yield mode, mailbox, port
    controller.stop()


def message() -> EmailMessage:
    links = {"app": "a", "academy": "b", "help": "c", "exit_survey": "d"}
    mail = Mail(key="k", template=MailTemplate.WELCOME, to=TO)
    context = variables(
        mail, MailContext(account=deal("acme")), TO, links=links, default_currency="USD"
    )
    rendered = render(template_environment(), "welcome", context)
    key = "onboarding-acme.0000aaaa:kickoff:welcome"
    return build_message(rendered, key=key, sender="cs@x.example", to=TO, cc=[])


def test_tls_delivers_to_a_server_whose_certificate_is_trusted(
    tls_server: tuple[str, Mailbox, int], certificate: tuple[Path, Path]
) -> None:
    mode, mailbox, port = tls_server
    settings = Settings(
        smtp_host="localhost", smtp_port=port, smtp_tls=mode, smtp_ca_file=certificate[0]
    )
    SmtpTransport(settings).send(message())
    assert mailbox.received() == ["onboarding-acme:kickoff:welcome"]


def test_nothing_goes_to_a_server_whose_certificate_is_not_trusted(
    tls_server: tuple[str, Mailbox, int],
) -> None:
    mode, mailbox, port = tls_server
    settings = Settings(smtp_host="localhost", smtp_port=port, smtp_tls=mode)
    with pytest.raises(MailDeferred, match="certificate verify failed"):
        SmtpTransport(settings).send(message())
    assert mailbox.messages == []


def test_a_login_in_clear_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_HOST", "relay.example.com")
    monkeypatch.setenv("SMTP_TLS", "none")
    monkeypatch.setenv("SMTP_USERNAME", "onboarding")
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2-secret")
    with pytest.raises(SettingsError, match="would send the password in clear") as refused:
        load_settings()
    assert "hunter2-secret" not in str(refused.value)
    monkeypatch.setenv("SMTP_ALLOW_PLAIN_LOGIN", "true")
    assert load_settings().smtp_allow_plain_login


def test_chat_urls_are_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_URLS", "slack://T0/B0/token-xyz")  # not a JSON list
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "CHAT_URLS" in str(refused.value) and "token-xyz" not in str(refused.value)
    monkeypatch.setenv("CHAT_URLS", '["slack://T0/B0/token-xyz"]')
    settings = load_settings()
    assert "token-xyz" not in repr(settings) and "token-xyz" not in str(settings.chat_urls)
