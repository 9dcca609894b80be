"""Settings: read once per process from `HUB_*` environment variables and `.env`, passed down."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from hub.channels.email.dkim import read_key
from hub.fields import contrast_with_white
from hub.preferences.model import Caps

DEVELOPMENT_SECRET = "development-only-secret-change-me"  # noqa: S105 - a marker, not a secret
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUB_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # HUB_ENV is the short spelling (the issue tracker and most deploy guides use it)
    environment: str = Field(
        "development",
        description="development | production",
        validation_alias=AliasChoices("HUB_ENVIRONMENT", "HUB_ENV"),
    )
    database_url: str = "sqlite:///var/hub.db"
    broker_url: str | None = None
    broker_namespace: str = "hub"  # Redis key prefix: several hubs can share one Redis
    # Where people and providers reach Hub: every link in every message starts with it. Left
    # unset, `hub serve` puts its own --host and --port here (see `public_url_is_set`), and
    # `hub worker` / `hub scheduler` keep this default with a warning.
    public_url: str = DEFAULT_PUBLIC_URL
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: IPs or CIDRs,
    # comma-separated or a JSON list. None by default, in development too (the environment
    # defaults to development, so a development-only default would reach installs that never
    # set it): the client is then the TCP peer, and a header cannot change whose sign-in or
    # link-request attempts are counted.
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = []
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    # Old secrets still accepted for verification during a rotation, newest first.
    old_secret_keys: list[SecretStr] = []
    # Keys the suppression list's address hashes. Set it once and never change it: rotating it
    # would forget every erased address. Defaults to a key derived from secret_key.
    hash_key: SecretStr | None = None

    smtp_host: str | None = None
    smtp_port: int = 25
    email_from: str = "Hub <hub@localhost>"
    # The name Hub greets SMTP servers with (EHLO); unset: the host of HUB_PUBLIC_URL when
    # that is a dotted domain name, else socket.getfqdn(). Receivers refuse or score a HELO
    # of "localhost" or a bare word.
    smtp_helo_name: str | None = None
    # DKIM signing of every e-mail (all three or none): the signing domain (d=), the selector
    # (s=; the public key is published at <selector>._domainkey.<domain>) and the PEM private
    # key's path. A missing or unreadable key stops Hub at start-up.
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key_file: Path | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_base_url: str | None = None
    webhook_allow_private: bool = False
    # The answer to an SMS "HELP" (carriers require one); it changes nothing.
    sms_help_text: str = "Reply STOP to stop these messages, START to get them again."
    # The opt-out said at the end of every call, by language (a JSON object); unset: Hub's
    # English and Russian wording. The key that stops calls is always 9.
    voice_opt_out: dict[str, str] | None = None
    # Standard Webhooks secret ("whsec_" + base64) that receivers verify; derived from
    # secret_key when unset, so set it explicitly before handing it to receivers.
    webhook_secret: SecretStr | None = None
    # Which adapter serves a channel, by entry-point name: {"email": "smtp"}. A channel left
    # out uses its built-in adapter when that is configured, else the capture sink.
    channel_providers: dict[str, str] = {}

    # Dispatch. Leases are how a crash is noticed: a queued row not picked up, or a sending
    # row not finished, within its lease is looked at again by the sweeper.
    fanout_batch_size: int = Field(1000, ge=1, le=10_000)
    delivery_batch_size: int = Field(200, ge=1, le=1_000)
    delivery_max_attempts: int = Field(8, ge=1, le=100)
    delivery_first_retry_seconds: float = Field(10, gt=0)  # doubling per attempt, up to an hour
    queue_lease_seconds: float = Field(300, gt=0)
    send_lease_seconds: float = Field(120, gt=0)
    sweep_interval_seconds: float = Field(2, gt=0)
    # Outbound event webhooks: seconds before each retry, as JSON in HUB_EVENT_RETRY_SCHEDULE.
    # Standard Webhooks' (and Svix's): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; about a day
    # and a half before a message is given up.
    event_retry_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    worker_threads: int = Field(2, ge=1, le=64)  # per queue: fan-out and each channel
    # Child processes in which the API renders staff templates (checks and previews), so a
    # slow one never holds the process that answers requests.
    render_processes: int = Field(2, ge=1, le=32)
    link_ttl_days: int = Field(60, ge=1)
    company_name: str = "Hub"
    # Marketing messages per person per rolling day / week, across all channels and topics
    # (a topic's own caps take precedence); unset: no cap.
    frequency_cap_per_day: int | None = Field(None, ge=1, le=1000)
    frequency_cap_per_week: int | None = Field(None, ge=1, le=10_000)
    # More providers per channel, tried in order when one fails with retryable errors: JSON,
    # the channel to a list of option overrides of its adapter, e.g.
    # {"email": [{"smtp_host": "relay2.example.com", "smtp_port": 587}]}.
    failover: dict[str, list[dict[str, Any]]] = {}
    failover_trip_after: int = Field(3, ge=1, le=100)  # failures in a row that rest a provider
    failover_rest_seconds: float = Field(30, gt=0)  # before a rested provider is tried again
    # After a STOP, a complaint or an opt-out, nothing is sent to that address for this many
    # days even if staff or a service lift it; only the person (START) lifts it earlier.
    cool_down_days: int = Field(30, ge=0, le=3650)
    # Campaigns need a second person's approval (an admin who did not create it) before
    # they can be scheduled.
    campaign_approval: bool = False
    # The self-service pages' header and buttons carry white text on this colour, so it must
    # reach WCAG AA's 4.5:1 against white; Hub refuses to start with one that does not.
    brand_color: str = "#1d4ed8"
    # A mailbox that turns "unsubscribe <token>" mails into unsubscribes; without it,
    # List-Unsubscribe carries only the HTTPS one-click link.
    unsubscribe_mailto: str | None = None

    # Mail that comes back: an SMTP (or LMTP) listener for the bounce and unsubscribe
    # mailboxes. `hub serve` runs it beside the API when a port is set; `hub inbound-mail`
    # runs it alone.
    inbound_mail_host: str = "127.0.0.1"
    inbound_mail_port: int | None = Field(None, ge=0, le=65535)
    inbound_mail_protocol: Literal["smtp", "lmtp"] = "smtp"
    inbound_mail_max_bytes: int = Field(10_485_760, ge=1024)

    # Bounces and complaints from a provider Hub relays through. Amazon SES through SNS:
    # only these topics' notifications are read (empty: the endpoint refuses all), signed by
    # a certificate from a URL that matches the pattern. SendGrid's signed event webhook:
    # its verification key (base64, as SendGrid shows it); unset, the endpoint refuses all.
    ses_topic_arns: Annotated[list[str], NoDecode] = []
    # The host must be a region's SNS endpoint (sns.eu-west-1, sns.us-gov-west-1, sns.cn-north-1
    # ...amazonaws.com.cn): a looser `sns.<anything>` took https://sns.s3.amazonaws.com/, where
    # anyone may own the S3 bucket `sns`.
    sns_certificate_url_pattern: str = (
        r"https://sns\.[a-z]{2}(-gov)?-[a-z]+-\d\.amazonaws\.com(\.cn)?"
        r"/SimpleNotificationService-[0-9a-f]+\.pem"
    )
    sendgrid_webhook_public_key: str | None = None

    # Opens and clicks: a hit waits this long before it is written, and clicks on several
    # links of one message within it are a link scanner's; a click this soon after the
    # message was sent is a machine's (a person has not read it yet).
    tracking_settle_seconds: float = Field(2.0, ge=0, le=60)
    tracking_too_soon_seconds: float = Field(5.0, ge=0, le=3600)

    max_request_bytes: int = 1_048_576  # JSON bodies; imports are streamed and not capped
    import_batch_size: int = 1000
    log_level: str = "INFO"
    # "json": one object per line with request and delivery ids, for a log pipeline.
    log_format: Literal["text", "json"] = "text"

    @field_validator("brand_color")
    @classmethod
    def _readable_on_white_text(cls, value: str) -> str:
        ratio = contrast_with_white(value)
        if ratio < 4.5:
            raise ValueError(
                f"white text on {value} has a contrast of {ratio:.2f}:1; WCAG AA asks for "
                "4.5:1, so choose a darker colour"
            )
        return value.lower()

    @field_validator("sns_certificate_url_pattern")
    @classmethod
    def _a_regular_expression(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a regular expression: {exc}") from None
        return value

    @field_validator("sendgrid_webhook_public_key")
    @classmethod
    def _a_p256_key(cls, value: str | None) -> str | None:
        """Base64 DER as SendGrid shows it (a PEM is taken too, and kept as base64 DER).
        Checked at start-up, so a mistyped key is a clear error now, not 503s later."""
        if value is None or not value.strip():
            return None
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        text = value.strip()
        try:
            if text.startswith("-----BEGIN"):
                key = serialization.load_pem_public_key(text.encode())
            else:
                key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
        except (ValueError, UnsupportedAlgorithm):
            raise ValueError(
                "is not a base64 public key as SendGrid shows it (Settings > Mail Settings > "
                "Event Webhook > Signature Verification)"
            ) from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise ValueError("is not an ECDSA P-256 key, which SendGrid signs with")
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        # A bare host name or a relative path would make every link in every message dead.
        parts = urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(
                "must be an absolute http:// or https:// URL, e.g. https://hub.example.com"
            )
        return value.strip()

    @field_validator("trusted_proxies", "ses_topic_arns", mode="before")
    @classmethod
    def _proxy_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator(
        "smtp_helo_name", "dkim_domain", "dkim_selector", "dkim_key_file", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value  # an unset compose variable

    @model_validator(mode="after")
    def _dkim_all_or_none(self) -> Settings:
        read_key(self.dkim_domain, self.dkim_selector, self.dkim_key_file)
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secret_in_production(self) -> Settings:
        if (
            self.environment != "development"
            and self.secret_key.get_secret_value() == DEVELOPMENT_SECRET
        ):
            raise ValueError("HUB_SECRET_KEY must be set outside development")
        if self.environment != "development" and self.hash_key is None:
            # Derived from the secret key, the erasure hashes would stop matching at the first
            # key rotation, and erased addresses would become contactable again.
            raise ValueError("HUB_HASH_KEY must be set outside development (once; never change it)")
        return self

    @property
    def public_url_is_set(self) -> bool:
        """Whether HUB_PUBLIC_URL (or a caller) named the public URL, even as the default's
        own value, rather than the default standing in for it."""
        return "public_url" in self.model_fields_set

    def require_public_url(self) -> None:
        """Raises ValueError outside development when HUB_PUBLIC_URL is not set.

        Asked by the processes whose messages carry links (`hub serve`, `hub worker`,
        `hub scheduler`), not by the settings validator: `hub db upgrade` or `hub apikey
        create` send nothing, and a migration job should not need the address."""
        if self.environment != "development" and not self.public_url_is_set:
            raise ValueError(
                "HUB_PUBLIC_URL must be set outside development: it is the address every "
                "link in a message points at (e.g. HUB_PUBLIC_URL=https://hub.example.com)"
            )

    def secret_values(self) -> list[str]:
        """Every secret these settings hold, for the log redactor."""
        found = [self.webhook_signing_secret().get_secret_value()]
        for name in type(self).model_fields:
            value = getattr(self, name)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, SecretStr):
                    found.append(item.get_secret_value())
        return found

    def webhook_signing_secret(self) -> SecretStr:
        """The configured `whsec_` secret, or one derived from secret_key (stable per key)."""
        if self.webhook_secret is not None and self.webhook_secret.get_secret_value():
            return self.webhook_secret
        digest = hmac.new(
            self.secret_key.get_secret_value().encode(), b"hub/webhook-signing", hashlib.sha256
        ).digest()
        return SecretStr("whsec_" + base64.b64encode(digest[:24]).decode())

    def forwarded_allow_ips(self) -> list[str]:
        """The trusted proxies as uvicorn takes them; empty: no forwarded header is read."""
        return [str(network) for network in self.trusted_proxies]

    def default_caps(self) -> Caps:
        return Caps(per_day=self.frequency_cap_per_day, per_week=self.frequency_cap_per_week)

    def link_secrets(self) -> list[str]:
        """Newest first: links signed before a rotation verify until they expire."""
        return [self.secret_key.get_secret_value()] + [
            s.get_secret_value() for s in self.old_secret_keys
        ]

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def safe_database_url(self) -> str:
        """The database URL with its password hidden, for logs and start-up banners."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    def sqlite_path(self) -> Path | None:
        database = make_url(self.database_url).database
        if not self.is_sqlite or not database or database == ":memory:":
            return None
        return Path(database)
