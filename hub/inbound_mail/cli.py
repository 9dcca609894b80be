"""The `hub inbound-mail` command (the listener alone, or one message from an MTA's pipe) and
the line `hub serve` prints for the listener it runs. `hub.cli` registers the command and lends
it its settings, runtime and error helpers, which this package may not import."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from pydantic import ValidationError

from hub import logs
from hub.settings import Settings

if TYPE_CHECKING:
    from hub.inbound_mail.listener import Listener, ListenerOptions
    from hub.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Shell:
    """What the command borrows from `hub`'s own CLI: settings read with their errors named,
    a runtime whose schema is current, and the way a command fails (message, exit 1)."""

    settings: Callable[[], Settings]
    runtime: Callable[[Settings], Runtime]
    fail: Callable[[str], NoReturn]


def options(
    shell: Shell,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    lmtp: bool | None = None,
) -> ListenerOptions:
    """The listener as settings (and the command's options) say; one that could accept
    nothing stops Hub here, naming the setting it needs. Nothing is started."""
    from hub.inbound_mail.listener import ListenerOptions

    try:
        return ListenerOptions.from_settings(settings, host=host, port=port, lmtp=lmtp)
    except ValueError as exc:  # NoMailboxes is one
        shell.fail(str(exc))


def register(app: typer.Typer, shell: Shell) -> None:
    """Add `hub inbound-mail` to `app`."""

    @app.command("inbound-mail")
    def inbound_mail(
        host: Annotated[
            str | None, typer.Option(help="Interface (default HUB_INBOUND_MAIL_HOST).")
        ] = None,
        port: Annotated[
            int | None, typer.Option(help="TCP port (default HUB_INBOUND_MAIL_PORT).", min=0)
        ] = None,
        lmtp: Annotated[
            bool | None,
            typer.Option("--lmtp/--smtp", help="Protocol (default HUB_INBOUND_MAIL_PROTOCOL)."),
        ] = None,
        stdin: Annotated[
            bool, typer.Option("--stdin", help="Read one message from stdin (an MTA's pipe).")
        ] = False,
        recipient: Annotated[
            str | None, typer.Option(help="With --stdin: the envelope recipient.")
        ] = None,
    ) -> None:
        """Receive mail for the bounce and unsubscribe mailboxes.

        The mailboxes are HUB_EMAIL_BOUNCE_ADDRESS and HUB_UNSUBSCRIBE_MAILTO.
        Without --stdin: an SMTP or LMTP listener, until SIGTERM or Ctrl-C.
        With --stdin: one message from an MTA's pipe transport; exits 0 (done),
        65 (too big), 67 (no such mailbox) or 75 (try again later)."""
        if stdin:
            if recipient is None:
                shell.fail("--stdin needs --recipient (Postfix: --recipient ${recipient})")
            raise typer.Exit(_piped(shell, recipient))
        from hub.inbound_mail.listener import Listener

        settings = shell.settings()
        chosen = options(shell, settings, host=host, port=port, lmtp=lmtp)
        runtime = shell.runtime(settings)
        logs.setup(settings)
        typer.echo(chosen.banner)
        try:
            asyncio.run(_listen(Listener(runtime, chosen)))
        finally:
            runtime.close()


async def _listen(listener: Listener) -> None:
    """Until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await listener.start()
    try:
        await stop.wait()
    finally:
        await listener.stop()


def _piped(shell: Shell, recipient: str) -> int:
    """One message from stdin. Anything that stops Hub from handling it now (settings, the
    database) is EX_TEMPFAIL: the MTA keeps the message and retries, nothing is lost."""
    from hub.inbound_mail.handling import Inbox, max_bytes
    from hub.inbound_mail.mailboxes import Mailboxes
    from hub.inbound_mail.pipe import Exit, deliver

    try:
        settings = Settings()
        logs.setup(settings)
        mailboxes = Mailboxes.from_settings(settings)
        runtime = shell.runtime(settings)
    except (ValidationError, ValueError, typer.Exit) as exc:
        typer.echo(f"hub inbound-mail: cannot start ({type(exc).__name__}); try later", err=True)
        return Exit.TEMPFAIL
    try:
        return deliver(
            Inbox.build(runtime),
            mailboxes,
            recipient=recipient,
            source=sys.stdin.buffer,
            max_bytes=max_bytes(settings),
        )
    finally:
        runtime.close()
