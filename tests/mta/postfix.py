"""A private Postfix on loopback: Debian's own binaries, a configuration and queue of its own.

It plays every mail system Hub meets after the send. Mail for `mail.example` is delivered to
maildirs (known users), accepted and then bounced with a real DSN (unknown users: the
recipient is not refused at RCPT time, as many relays and MX hosts behind a gateway do), or
bounced as "mailbox full" (a tiny per-message limit for one user). Mail for `dead.example` goes to
a port that refuses connections, so it is deferred, warned about (a delay DSN) and given up
after a queue lifetime of seconds. `route()` sends a domain's mail, such as the DSNs to Hub's
VERP bounce address, to a listener of the test's own.

Everything lives in one directory (main.cf, master.cf, queue, data, maildirs and the log),
so several instances run side by side under pytest-xdist; the system's Postfix is never
started or touched. Postfix needs root (its master process changes user to `postfix`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

SBIN = Path("/usr/sbin")
MAIL_DOMAIN = "mail.example"  # delivered to maildirs under the instance's directory
DEAD_DOMAIN = "dead.example"  # relayed to a port that refuses: deferred, then expired
HOSTNAME = "mx.hub-test.example"
# The "full" mailbox is an mbox file of FULL_LIMIT bytes at most, nearly filled at the start:
# a message that does not fit bounces at once as mailbox full (Status: 5.2.2).
FULL_USER, FULL_LIMIT, FULL_ALREADY = "full", 65_536, 63_000
# Seconds: how soon the queue is run again, when a deferred message is warned about, and when
# it is given up (with a DSN saying Action: failed, Status: 4.4.1).
QUEUE_RUN_DELAY = 1
DELAY_WARNING = 3
QUEUE_LIFETIME = 12


class PostfixMissing(Exception):
    """Postfix cannot run here: not installed, not root, or it did not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivatePostfix:
    """One Postfix instance. `start()`, then `users` get mail; `stop()` removes everything."""

    def __init__(self, name: str, users: tuple[str, ...] = ("ann", "bob", "cy")) -> None:
        self.name = re.sub(r"[^A-Za-z0-9-]", "-", name)[:40]
        self.users = users
        self.directory = Path(tempfile.mkdtemp(prefix=f"hub-postfix-{self.name}-"))
        # The virtual delivery agent writes maildirs as `nobody`: every folder above them
        # must be open to it (pytest's tmp_path is not).
        self.directory.chmod(0o755)
        self.port = free_port()
        # Bound and never listening: a connection to it is refused for as long as we hold it.
        self._dead = socket.socket()
        self._dead.bind(("127.0.0.1", 0))
        self.dead_port: int = self._dead.getsockname()[1]
        self._routes: dict[str, str] = {}
        self._started = False

    @property
    def config(self) -> Path:
        return self.directory / "etc"

    @property
    def log_file(self) -> Path:
        return self.directory / "maillog"

    def address(self, user: str) -> str:
        return f"{user}@{MAIL_DOMAIN}"

    # -- running -------------------------------------------------------------------------

    def start(self, timeout: float = 20) -> PrivatePostfix:
        """Raises PostfixMissing when Postfix is not installed, we are not root, or its
        smtpd does not answer within `timeout` (with the log in the message)."""
        if not (SBIN / "postfix").exists():
            raise PostfixMissing("/usr/sbin/postfix not found (Debian's postfix package)")
        if os.geteuid() != 0:
            raise PostfixMissing("Postfix's master process must start as root")
        self._write_config()
        started = self._postfix("start")
        if started.returncode != 0:
            raise PostfixMissing(f"`postfix start` failed: {started.stderr}{self.log()}")
        self._started = True
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    if sock.recv(512).startswith(b"220"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise PostfixMissing(f"Postfix's smtpd did not answer: {self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the instance and remove its directory."""
        if self._started:
            self._postfix("stop")
            self._started = False
            self._wait_master_gone()
        self._dead.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def route(self, domain: str, nexthop: str) -> None:
        """Send mail for `domain` to `nexthop`, a Postfix transport such as
        `smtp:[127.0.0.1]:2525` or `lmtp:inet:127.0.0.1:2424`, from now on."""
        self._routes[domain] = nexthop
        self._write_transport()
        self._postfix("reload")

    def flush(self) -> None:
        """Attempt every deferred message now (`postqueue -f`)."""
        subprocess.run(
            [SBIN / "postqueue", "-c", self.config, "-f"], capture_output=True, check=False
        )

    def queue(self) -> str:
        """What is in the queue, as `postqueue -p` prints it."""
        listed = subprocess.run(
            [SBIN / "postqueue", "-c", self.config, "-p"],
            capture_output=True,
            text=True,
            check=False,
        )
        return listed.stdout + listed.stderr

    # -- reading -------------------------------------------------------------------------

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log written)"

    def wait_log(self, pattern: str, *, after: int = 0, timeout: float = 30) -> re.Match[str]:
        """The first match of `pattern` in the log past character `after`, waiting up to
        `timeout` seconds. Raises AssertionError with the log when it never appears."""
        found = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = found.search(self.log(), after)
            if match is not None:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not in Postfix's log within {timeout} s: {pattern}\n{self.log()[after:]}"
                )
            time.sleep(0.1)

    def maildir(self, user: str) -> list[EmailMessage]:
        """The messages delivered to `user`, oldest first."""
        folder = self.directory / "mail" / MAIL_DOMAIN / user / "new"
        files = sorted(folder.iterdir(), key=lambda f: f.stat().st_mtime) if folder.exists() else []
        return [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]

    def raw_maildir(self, user: str) -> list[bytes]:
        folder = self.directory / "mail" / MAIL_DOMAIN / user / "new"
        files = sorted(folder.iterdir(), key=lambda f: f.stat().st_mtime) if folder.exists() else []
        return [f.read_bytes() for f in files]

    @contextlib.contextmanager
    def printed_on_failure(self) -> Iterator[None]:
        """Print the log written meanwhile when the block fails: pytest shows it beside the
        failure (Postfix's reasons are in its log, not in what Hub saw)."""
        mark = len(self.log())
        try:
            yield
        except BaseException:
            print(f"--- Postfix log ({self.log_file}) ---\n{self.log()[mark:]}")
            print(f"--- Postfix queue ---\n{self.queue()}")
            raise

    # -- configuration -------------------------------------------------------------------

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SBIN / "postfix", "-c", self.config, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def _wait_master_gone(self, timeout: float = 15) -> None:
        pid_file = self.directory / "queue" / "pid" / "master.pid"
        deadline = time.monotonic() + timeout
        while pid_file.exists() and time.monotonic() < deadline:
            try:
                os.kill(int(pid_file.read_text().split()[0]), 0)
            except (OSError, ValueError, IndexError):
                return
            time.sleep(0.1)

    def _write_config(self) -> None:
        nobody = pwd.getpwnam("nobody")
        mail = self.directory / "mail"
        for user in self.users:
            (mail / MAIL_DOMAIN / user).mkdir(parents=True, exist_ok=True)
        old = "From old@mail.example Thu Jan  1 00:00:00 2026\nSubject: old\n\n"
        (mail / MAIL_DOMAIN / FULL_USER).write_text(old + "x" * (FULL_ALREADY - len(old)) + "\n")
        for folder in (mail, *mail.rglob("*")):
            os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        (self.directory / "queue").mkdir()
        (self.directory / "data").mkdir()
        os.chown(self.directory / "data", pwd.getpwnam("postfix").pw_uid, -1)
        self.config.mkdir()
        boxes = [f"{self.address(u)} {MAIL_DOMAIN}/{u}/" for u in self.users]  # maildirs
        boxes.append(f"{self.address(FULL_USER)} {MAIL_DOMAIN}/{FULL_USER}")  # an mbox file
        (self.config / "vmailbox").write_text("\n".join(boxes) + "\n")
        self._routes = {
            self.address(FULL_USER): "tinybox:",
            DEAD_DOMAIN: f"smtp:[127.0.0.1]:{self.dead_port}",
        }
        self._write_transport()
        (self.config / "main.cf").write_text(self._main_cf(nobody.pw_uid, nobody.pw_gid))
        (self.config / "master.cf").write_text(self._master_cf())

    def _write_transport(self) -> None:
        lines = "".join(f"{key} {value}\n" for key, value in self._routes.items())
        (self.config / "transport").write_text(lines)

    def _main_cf(self, uid: int, gid: int) -> str:
        d = self.directory
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        return f"""\
compatibility_level = 3.6
queue_directory = {d / "queue"}
data_directory = {d / "data"}
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-hub-{worker}-{self.port}
maillog_file = {self.log_file}
maillog_file_prefixes = {d}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = {HOSTNAME}
mydomain = hub-test.example
myorigin = $myhostname
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
notify_classes =
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
lmtp_host_lookup = native

# A real MX's HELO rules: Hub must greet with a fully qualified name.
smtpd_helo_required = yes
smtpd_helo_restrictions = reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
# Unknown users are accepted and bounced afterwards with a DSN, not refused at RCPT time.
smtpd_reject_unlisted_recipient = no

virtual_mailbox_domains = {MAIL_DOMAIN}
virtual_mailbox_base = {d / "mail"}
virtual_mailbox_maps = texthash:{self.config / "vmailbox"}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
transport_maps = texthash:{self.config / "transport"}

queue_run_delay = {QUEUE_RUN_DELAY}s
minimal_backoff_time = {QUEUE_RUN_DELAY}s
maximal_backoff_time = {2 * QUEUE_RUN_DELAY}s
delay_warning_time = {DELAY_WARNING}s
maximal_queue_lifetime = {QUEUE_LIFETIME}s
bounce_queue_lifetime = {QUEUE_LIFETIME}s
smtp_connect_timeout = 5s
"""

    def _master_cf(self) -> str:
        # service type private unpriv chroot wakeup maxproc command
        services = [
            f"127.0.0.1:{self.port} inet n - n - - smtpd",
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 1 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "lmtp unix - - n - - lmtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "virtual unix - n n - - virtual",
            # One small mailbox: a message over the limit bounces as mailbox full (5.2.2).
            f"tinybox unix - n n - - virtual -o virtual_mailbox_limit={FULL_LIMIT}"
            f" -o message_size_limit={FULL_LIMIT}",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        return "\n".join(services) + "\n"
