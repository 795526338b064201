"""A private Dovecot 2.3 for tests: IMAP, IMAPS, LMTP and XOAUTH2 on loopback ports.

::

    with DovecotServer.start() as dovecot:
        dovecot.add_user("alice@example.test", "alice-pw")
        dovecot.deliver("alice@example.test", raw_message_bytes)
        ... IMAPClient("127.0.0.1", dovecot.imap_port, ssl=False) ...

What it sets up, and why (see ``/work/shared/research/email-webhooks.md`` §4):

- everything lives in one short temporary directory (unix sockets must fit in 108 bytes):
  ``dovecot.conf``, the passwd-file ``users`` (0644: the auth process runs as ``dovecot``),
  maildirs owned by ``nobody`` (Dovecot refuses uid 0 for mail), the TLS files and the log;
- ``imap_port`` on 127.0.0.1: Dovecot treats a connection whose remote and local addresses are
  equal as secured, so plaintext LOGIN works there (fast tests);
- ``imap_insecure_port`` on **127.0.0.2**: the client's address (127.0.0.1) differs, so the
  connection counts as insecure: ``LOGINDISABLED`` is advertised and plaintext LOGIN is refused
  with ``[PRIVACYREQUIRED]``; STARTTLS on this port then allows the login;
- ``imaps_port``: implicit TLS with a certificate from a throw-away CA (``ca_file``);
- ``lmtp_port``: LMTP delivery into the same maildirs (how tests and the SMTP relay inject mail);
- XOAUTH2: an ``oauth2`` passdb validates bearer tokens against a tiny introspection HTTP
  endpoint run here in a thread (``POST token=...`` → ``{"active": true, "username": ...}``);
  tokens are added with :meth:`DovecotServer.grant_token`;
- the anvil auth-penalty socket is disabled, otherwise one failed login delays every later login
  from the same address by ~4 s.

It needs ``/usr/sbin/dovecot`` (Debian 12: 2.3.19) and root (or a user that can ``chown``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DOVECOT_BINARY",
    "DovecotServer",
    "TlsFiles",
    "dovecot_available",
    "free_port",
    "make_tls_files",
]

DOVECOT_BINARY = "/usr/sbin/dovecot"
MAIL_UID = 65534  # nobody: Dovecot refuses to run mail processes as uid 0
MAIL_GID = 65534
INSECURE_ADDRESS = "127.0.0.2"


def dovecot_available() -> bool:
    """Whether a Dovecot binary is installed and we may start it (root, for ``chown``)."""
    return Path(DOVECOT_BINARY).exists() and os.geteuid() == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --- TLS -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A test CA and a server certificate for ``localhost``, 127.0.0.1 and 127.0.0.2."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """Write a throw-away CA and a server certificate (P-256, one day) to ``directory``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connectors test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address(INSECURE_ADDRESS)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    # Dovecot reads the key as root before dropping privileges; keep it private anyway.
    os.chmod(files.key_file, 0o600)
    return files


# --- token introspection ------------------------------------------------------------------------


class _Introspection:
    """The OAuth2 introspection endpoint Dovecot's ``oauth2`` passdb asks about each token."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.requests = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode("ascii", "replace"))
                token = (form.get("token") or [""])[0]
                with owner._lock:
                    owner.requests += 1
                    user = owner.tokens.get(token)
                body = {"active": True, "username": user} if user else {"active": False}
                data = json.dumps(body).encode()
                self.send_response(200 if user else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="dovecot-introspection", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


# --- the server ---------------------------------------------------------------------------------

_CONF = """\
instance_name = dovecot-test-{tag}
base_dir = {root}/run
state_dir = {root}/state
listen = 127.0.0.1
protocols = imap lmtp
hostname = localhost
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{tls.cert_file}
ssl_key = <{tls.key_file}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {root}/users
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2
  args = {root}/oauth2.conf.ext
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
  default_fields = uid={uid} gid={gid} home={root}/mail/%u
}}
mail_location = maildir:~/Maildir
# a throw-away test server: no fsync per message (APPEND/LMTP are much faster)
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imap_insecure {{
    address = {insecure}
    port = {imap_insecure_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
  unix_listener lmtp {{
    mode = 0600
  }}
}}
protocol lmtp {{
  auth_username_format = %u
}}
service imap {{
  process_limit = 64
}}
imap_idle_notify_interval = 2 mins
"""

_OAUTH2_CONF = """\
introspection_url = http://127.0.0.1:{port}/introspect
introspection_mode = post
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


@dataclass
class DovecotServer:
    """A running private Dovecot. Use :meth:`start` (a context manager) to get one."""

    root: Path
    process: subprocess.Popen[bytes]
    tls: TlsFiles
    imap_port: int
    imap_insecure_port: int
    imaps_port: int
    lmtp_port: int
    introspection: _Introspection
    insecure_host: str = INSECURE_ADDRESS
    _spares: list[tuple[str, str]] = field(default_factory=list)

    # --- life cycle --------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def start(
        cls, *, ready_timeout: float = 10.0, spare_users: int = 64
    ) -> Iterator[DovecotServer]:
        """Start Dovecot in the foreground, wait for its banners, stop it (SIGTERM) afterwards.

        ``spare_users`` accounts are written before start-up, for :meth:`claim_user`.
        """
        server = cls._launch(ready_timeout, spare_users)
        try:
            yield server
        finally:
            server.stop()

    @classmethod
    def _launch(cls, ready_timeout: float, spare_users: int) -> DovecotServer:
        if not dovecot_available():
            raise RuntimeError(f"{DOVECOT_BINARY} is not installed or we are not root")
        root = Path(tempfile.mkdtemp(prefix="dv-", dir="/tmp"))
        os.chmod(root, 0o711)
        tls = make_tls_files(root / "tls")
        os.chmod(root / "tls", 0o755)
        (root / "mail").mkdir()
        os.chown(root / "mail", MAIL_UID, MAIL_GID)
        users = root / "users"
        spares = [
            (f"user{index:03d}@example.test", f"pw-{secrets.token_hex(6)}")
            for index in range(spare_users)
        ]
        users.write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in spares))
        os.chmod(users, 0o644)
        introspection = _Introspection()
        oauth = root / "oauth2.conf.ext"
        oauth.write_text(_OAUTH2_CONF.format(port=introspection.port))
        os.chmod(oauth, 0o644)
        ports = {
            "imap_port": free_port(),
            "imap_insecure_port": free_port(INSECURE_ADDRESS),
            "imaps_port": free_port(),
            "lmtp_port": free_port(),
        }
        conf = root / "dovecot.conf"
        conf.write_text(
            _CONF.format(
                tag=root.name,
                root=root,
                tls=tls,
                uid=MAIL_UID,
                gid=MAIL_GID,
                insecure=INSECURE_ADDRESS,
                **ports,
            )
        )
        process = subprocess.Popen(
            [DOVECOT_BINARY, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        server = cls(root=root, process=process, tls=tls, introspection=introspection, **ports)
        server._spares = spares
        try:
            server._wait_ready(ready_timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, timeout: float) -> None:
        give_up = time.monotonic() + timeout
        pending = [
            ("127.0.0.1", self.imap_port, b"* OK"),
            (self.insecure_host, self.imap_insecure_port, b"* OK"),
            ("127.0.0.1", self.lmtp_port, b"220"),
            ("127.0.0.1", self.imaps_port, b""),  # implicit TLS says nothing before ClientHello
        ]
        while pending:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self.process.returncode}: {self.log()}")
            host, port, banner = pending[0]
            try:
                with socket.create_connection((host, port), timeout=1.0) as sock:
                    if banner and not sock.recv(64).startswith(banner):
                        raise OSError("no banner yet")
                pending.pop(0)
            except OSError:
                if time.monotonic() > give_up:
                    raise RuntimeError(
                        f"dovecot not ready on {host}:{port}: {self.log()}"
                    ) from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop the master (it waits for its children), the introspection endpoint, and clean up."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.introspection.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- accounts and tokens -------------------------------------------------------------------

    def claim_user(self) -> tuple[str, str]:
        """A fresh ``(user, password)`` created at start-up (usable at once, empty mailbox)."""
        if not self._spares:
            raise RuntimeError("no spare users left: start Dovecot with more spare_users")
        return self._spares.pop(0)

    def add_user(self, user: str, password: str, *, wait: float = 5.0) -> None:
        """Add a mailbox user and wait until Dovecot sees it.

        Dovecot re-reads a changed passwd-file at most once per second, so a new user can take
        up to a second to appear; prefer :meth:`claim_user` in tests.
        """
        if any(c in user + password for c in ":\n"):
            raise ValueError("user and password may not contain ':' or newlines")
        with (self.root / "users").open("a") as users:
            users.write(f"{user}:{{PLAIN}}{password}::::::\n")
        give_up = time.monotonic() + wait
        while True:
            result = subprocess.run(
                ["/usr/bin/doveadm", "-c", str(self.root / "dovecot.conf"), "user", user],
                capture_output=True,
                timeout=30,
                check=False,
            )
            if result.returncode == 0:
                return
            if time.monotonic() > give_up:
                raise RuntimeError(f"dovecot did not pick up user {user!r}")
            time.sleep(0.1)

    def grant_token(self, token: str, user: str) -> None:
        """Make ``token`` a valid XOAUTH2 bearer token for ``user``."""
        with self.introspection._lock:
            self.introspection.tokens[token] = user

    def revoke_token(self, token: str) -> None:
        with self.introspection._lock:
            self.introspection.tokens.pop(token, None)

    # --- mail -----------------------------------------------------------------------------------

    def deliver(self, recipient: str, message: bytes, sender: str = "test@example.test") -> None:
        """Deliver a raw message into ``recipient``'s INBOX over LMTP (blocking)."""
        with smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=30) as lmtp:
            lmtp.sendmail(sender, [recipient], message)

    def doveadm(self, *args: str) -> str:
        """Run ``doveadm`` against this instance; returns its stdout."""
        result = subprocess.run(
            ["/usr/bin/doveadm", "-c", str(self.root / "dovecot.conf"), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return result.stdout

    def log(self) -> str:
        """The tail of Dovecot's log (for failure messages)."""
        path = self.root / "dovecot.log"
        try:
            return path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"
