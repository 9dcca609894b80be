"""The `hub` command: serve, inbound-mail, db upgrade, apikey, user, contacts import."""

from __future__ import annotations

import getpass
import ipaddress
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, BinaryIO, NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session

from hub import logs
from hub.db import migrate
from hub.domain import ActorKind, Scope, StaffRole
from hub.inbound_mail import cli as inbound_mail
from hub.runtime import Runtime
from hub.services import apikeys, staff
from hub.services.actor import Actor
from hub.services.errors import HubError, InvalidField
from hub.settings import Settings

app = typer.Typer(
    help="Hub: who wants to hear what, how and when.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for other services.", no_args_is_help=True)
user_app = typer.Typer(help="Staff users of the console.", no_args_is_help=True)
contacts_app = typer.Typer(help="Contacts in bulk.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(user_app, name="user")
app.add_typer(contacts_app, name="contacts")

CHUNK = 64 * 1024
log = logging.getLogger("hub.cli")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # Never echo the input: it may hold secrets from the environment.
        problems = "; ".join(
            f"HUB_{'_'.join(map(str, e['loc'])).upper() or 'SETTINGS'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        _fail(f"invalid settings: {problems}")


def _cli(source: str) -> Actor:
    """Who the audit log names for a change made at this machine's shell: the operating-system
    user running `hub`, since the CLI has no sign-in of its own."""
    try:
        who = getpass.getuser()
    except (OSError, KeyError):  # a container user with no name
        who = "unknown"
    return Actor(kind=ActorKind.CLI, name=f"cli:{who}", source=source)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code=1)


def _runtime(settings: Settings | None = None, *, upgrade_sqlite: bool = True) -> Runtime:
    """A runtime whose schema is current: SQLite upgrades itself, PostgreSQL must be upgraded."""
    runtime = Runtime.build(settings or _settings())
    try:
        behind = migrate.pending(runtime.engine)
    except Exception as exc:
        _fail(f"cannot reach the database {runtime.settings.safe_database_url}: {exc}")
    if behind:
        if runtime.settings.is_sqlite and upgrade_sqlite:
            migrate.upgrade(runtime.engine)
        else:
            _fail("the database schema is behind this version of Hub; run `hub db upgrade`")
    return runtime


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"  # IPv6 in []


def banner(host: str, port: int) -> str:
    """The first line `hub serve` prints: where to point a browser, the console first."""
    url = _url(host, port)
    return f"Hub listening on {url} — console: {url}/console, API docs: {url}/docs"


def _every_interface(host: str) -> bool:
    try:
        return host == "" or ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a name, such as localhost
        return False


def public_url_for(settings: Settings, *, host: str, port: int) -> tuple[Settings, str]:
    """The settings `hub serve` runs with, and the banner's line on where links point.

    HUB_PUBLIC_URL wins. Without it, links lead where this server listens, so captured mail
    on another port is not full of dead links. A wildcard address (0.0.0.0, ::) is not one
    a browser can go to: the loopback of its family stands in, which works on this machine;
    guessing a host name or a LAN address could give links that work nowhere."""
    if settings.public_url_is_set:
        return settings, f"links:    {settings.public_url} (from HUB_PUBLIC_URL)"
    if _every_interface(host):
        loopback = "::1" if ":" in host else "127.0.0.1"
        url = _url(loopback, port)
        shown = host or "''"
        said = (
            f"links:    {url} (from --port; --host {shown} listens on every interface, "
            "so links use this machine's loopback and work here only; set HUB_PUBLIC_URL for "
            "the address others reach)"
        )
    else:
        url = _url(host, port)
        said = f"links:    {url} (from --host and --port; set HUB_PUBLIC_URL for a public address)"
    return settings.model_copy(update={"public_url": url}), said


def _require_public_url(settings: Settings) -> None:
    try:
        settings.require_public_url()
    except ValueError as exc:
        _fail(str(exc))


def _warn_of_default_public_url(settings: Settings, command: str) -> None:
    """`hub worker` and `hub scheduler` cannot know where `hub serve` listens."""
    if not settings.public_url_is_set:
        log.warning(
            "%s: HUB_PUBLIC_URL is not set, so links in messages point at the default %s; "
            "set it to the address people reach `hub serve` at",
            command,
            settings.public_url,
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Run the HTTP API; on the embedded default (no HUB_BROKER_URL) also the workers.

    Links in messages lead to HUB_PUBLIC_URL, or without it to --host and --port."""
    import uvicorn

    from hub.app import create_app

    settings = _settings()
    _require_public_url(settings)
    # Before the runtime is built: the API, the in-process workers and the sweeper all read
    # this one settings object, so every link they make names the same address.
    settings, links = public_url_for(settings, host=host, port=port)
    runtime = _runtime(settings)
    logs.setup(settings)
    broker = (settings.broker_url and "external broker (run `hub worker`)") or "in-process"
    # uvicorn would believe X-Forwarded-For from loopback by default: anyone on the machine
    # could then choose their address. Only the proxies named in settings are believed.
    proxies = settings.forwarded_allow_ips()
    clients = f"X-Forwarded-For from {', '.join(proxies)}" if proxies else "the TCP peer"
    typer.echo(banner(host, port))
    typer.echo(f"database: {settings.safe_database_url}")
    typer.echo(f"broker:   {broker}")
    typer.echo(f"clients:  {clients}")
    typer.echo(links)
    if settings.inbound_mail_port is not None:
        typer.echo(inbound_mail.options(_SHELL, settings).banner)
    uvicorn.run(
        create_app(runtime=runtime, run_workers=settings.broker_url is None),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,  # our handler: redacted, JSON when asked
        access_log=False,  # hub.http logs each request by its route, never a link's token
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
        server_header=False,
    )


# `hub inbound-mail` lives with the listener (hub.inbound_mail.cli) and borrows
# these helpers; registered here, so `hub --help` lists it after serve.
_SHELL = inbound_mail.Shell(settings=_settings, runtime=_runtime, fail=_fail)
inbound_mail.register(app, _SHELL)


@app.command()
def worker(
    processes: Annotated[int, typer.Option(help="Worker processes to run.", min=1)] = 1,
    threads: Annotated[
        int | None, typer.Option(help="Threads per process (default HUB_WORKER_THREADS).", min=1)
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve the processes' Prometheus metrics on this port.")
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Interface for --metrics-port (0.0.0.0 inside a container).")
    ] = "127.0.0.1",
) -> None:
    """Run dispatch workers against HUB_BROKER_URL (any number, on any machine)."""
    settings = _settings()
    _require_public_url(settings)
    if settings.broker_url is None:
        _fail(
            "hub worker needs HUB_BROKER_URL (e.g. redis://127.0.0.1:6379/0); on the embedded "
            "default `hub serve` runs the workers itself"
        )
    if threads is not None:
        settings = settings.model_copy(update={"worker_threads": threads})
    logs.setup(settings)
    _warn_of_default_public_url(settings, "hub worker")
    from hub.workers.process import run

    if metrics_port is not None:
        from hub.workers.process import serve_metrics

        serve_metrics(metrics_host, metrics_port, processes=processes)
        typer.echo(f"metrics on http://{metrics_host}:{metrics_port}/metrics")
    raise typer.Exit(run(settings, processes=processes))


@app.command()
def scheduler() -> None:
    """Dispatch campaign occurrences when they fall due (safe to run several at once)."""
    import signal
    import threading

    from hub.campaigns.scheduler import Scheduler

    settings = _settings()
    _require_public_url(settings)
    runtime = _runtime(settings, upgrade_sqlite=False)
    logs.setup(settings)
    _warn_of_default_public_url(settings, "hub scheduler")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    running = Scheduler(
        runtime.sessions, runtime.enqueuer, interval=settings.sweep_interval_seconds
    )
    typer.echo(f"scheduler on {settings.safe_database_url}, every {running.interval:g} s")
    running.start()
    stop.wait()
    running.stop()
    runtime.close()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    runtime = Runtime.build(_settings())
    migrate.upgrade(runtime.engine)
    typer.echo(f"database {runtime.settings.safe_database_url} is up to date")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="Who the key is for, e.g. billing-service.")],
    scope: Annotated[list[Scope], typer.Option(help="Repeat for several scopes.")],
) -> None:
    """Create a key. The secret is printed once, as the last line, and never stored."""
    runtime = _runtime()
    with runtime.sessions() as session:
        try:
            secret = apikeys.create(session, name, scope, actor=_cli("cli.apikey"))
        except HubError as exc:
            _fail(exc.message)
        session.commit()
    typer.echo(
        f"API key {name!r} created with scopes {', '.join(s.value for s in scope)}.", err=True
    )
    typer.echo("Store the secret now: it cannot be shown again.", err=True)
    typer.echo(secret)


@apikey_app.command("revoke")
def apikey_revoke(name: str) -> None:
    """Revoke a key by name; requests with it get 401 from now on."""
    runtime = _runtime()
    with runtime.sessions() as session:
        if not apikeys.revoke(session, name, actor=_cli("cli.apikey")):
            _fail(f"no active API key named {name!r}")
        session.commit()
    typer.echo(f"API key {name!r} revoked")


@user_app.command("create")
def user_create(
    email: str,
    role: Annotated[StaffRole, typer.Option(help="admin, marketer or viewer.")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
) -> None:
    """Create a staff user for the console (the password is hashed with argon2id)."""
    password = _new_password(password_stdin)
    runtime = _runtime()
    with runtime.sessions() as session:
        try:
            staff.create(session, email, password, role, actor=_cli("cli.user"))
        except (HubError, ValueError) as exc:
            _fail(getattr(exc, "message", str(exc)))
        session.commit()
    typer.echo(f"staff user {email} created with role {role.value}")


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _change_user(change: Callable[[Session], int], done: str) -> None:
    """Run one change to a staff user in a transaction and say how many sessions it ended."""
    runtime = _runtime()
    with runtime.sessions() as session:
        try:
            ended = change(session)
        except (HubError, ValueError) as exc:
            _fail(getattr(exc, "message", str(exc)))
        session.commit()
    typer.echo(f"{done}; {ended} session{'s' * (ended != 1)} ended")


@user_app.command("password")
def user_password(
    email: str,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
) -> None:
    """Set a new password; every console session of the user ends at once."""
    password = _new_password(password_stdin)
    _change_user(
        lambda session: staff.set_password(session, email, password, actor=_cli("cli.user")),
        f"password of {email} changed",
    )


@user_app.command("disable")
def user_disable(email: str) -> None:
    """Disable a user: sign-in is refused and every console session ends at once."""
    _change_user(
        lambda session: staff.set_disabled(session, email, True, actor=_cli("cli.user")),
        f"{email} disabled",
    )


@user_app.command("enable")
def user_enable(email: str) -> None:
    """Enable a disabled user again (ended sessions stay ended: the user signs in anew)."""
    _change_user(
        lambda session: staff.set_disabled(session, email, False, actor=_cli("cli.user")),
        f"{email} enabled",
    )


@user_app.command("role")
def user_role(
    email: str,
    role: Annotated[StaffRole, typer.Option(help="admin, marketer or viewer.")],
) -> None:
    """Give a user another role, from their next page on (the last enabled admin stays one)."""
    runtime = _runtime()
    with runtime.sessions() as session:
        try:
            changed = staff.set_role(session, email, role, actor=_cli("cli.user"))
        except HubError as exc:
            _fail(exc.message)
        session.commit()
    typer.echo(f"{email} is {'now' if changed else 'already'} {role.value}")


@user_app.command("sign-out")
def user_sign_out(email: str) -> None:
    """End every console session of a user, e.g. after a lost laptop."""
    _change_user(
        lambda session: staff.sign_out_everywhere(session, email, actor=_cli("cli.user")),
        f"{email} signed out",
    )


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


@contacts_app.command("import")
def contacts_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    *,
    format: Annotated[
        str | None, typer.Option(help="csv or ndjson; default from the file name.")
    ] = None,
    subscribe_topic: Annotated[
        str | None,
        typer.Option(help="Subscribe every imported person to this topic (its key)."),
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option(
            help="With --subscribe-topic: a channel (email, sms, voice, webhook), repeated in "
            "order of preference; none: the topic's default channels."
        ),
    ] = None,
    consent_source: Annotated[
        str | None,
        typer.Option(help="With --subscribe-topic (required): where these people agreed."),
    ] = None,
    consent_note: Annotated[
        str | None,
        typer.Option(help="With --subscribe-topic: a note kept on each consent event."),
    ] = None,
) -> None:
    """Import contacts from CSV or NDJSON: good rows are kept, bad rows reported with their line.
    With --subscribe-topic, each imported person is also subscribed, with the consent source and
    note on their timeline; a person who cannot be (no usable channel, a suppressed address,
    their own recent unsubscribe) is imported but counted as failed, with the reason."""
    import datetime as dt

    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from hub.domain import Channel
    from hub.services.imports import Subscriber, Tally, format_for, import_contacts, subscribe

    try:
        fmt = format_for(format and f"text/{format}", file.name)
        channels = [Channel(name.strip().lower()) for name in channel or []]
    except ValueError as exc:
        _fail(str(exc))
    runtime = _runtime()
    actor = Actor(kind=ActorKind.CLI, name="cli", source="cli.import")
    try:
        with runtime.reads() as session:
            option = subscribe.checked(
                session,
                topic=subscribe_topic,
                channels=channels,
                consent_source=consent_source,
                note=consent_note,
            )
    except InvalidField as exc:  # named as the option the person typed
        name = exc.field.partition("[")[0]
        option_name = (
            "--channel" if name == subscribe.CHANNELS_FIELD else "--" + name.replace("_", "-")
        )
        _fail(f"{option_name}: {exc.message.removeprefix(exc.field + ': ')}")
    subscriber = None
    if option is not None:
        subscriber = Subscriber(
            option,
            actor=actor,
            hasher=runtime.hasher,
            cool_down=dt.timedelta(days=runtime.settings.cool_down_days),
        )
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar, file.open("rb") as handle:
        task = bar.add_task(file.name, total=file.stat().st_size, rows=0)

        def progress(tally: Tally) -> None:
            bar.update(task, completed=tally.bytes_read, rows=tally.rows)

        try:
            report = import_contacts(
                runtime.sessions,
                _chunks(handle),
                fmt=fmt,
                actor=actor,
                allow_private_webhooks=runtime.settings.webhook_allow_private,
                batch_size=runtime.settings.import_batch_size,
                progress=progress,
                subscriber=subscriber,
            )
        except HubError as exc:
            _fail(exc.message)
    subscribed = f", {report.subscribed:,} subscribed to {option.topic}" if option else ""
    typer.echo(
        f"{report.rows:,} rows: {report.created:,} created, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged, {report.failed:,} failed{subscribed}"
    )
    for error in report.errors[:20]:
        typer.echo(f"  line {error.line}: {error.field}: {error.reason}", err=True)
    hidden = len(report.errors) - 20
    if hidden > 0 or report.errors_truncated:
        more = f"{hidden:,} more problems" if hidden > 0 else "more problems"
        typer.echo(
            f"  ... and {more}{' (and more not listed)' * report.errors_truncated}", err=True
        )
    if report.failed:
        raise typer.Exit(code=2)


def main() -> None:
    app()
