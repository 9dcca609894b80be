"""Settings turned into channel adapter options: each built-in adapter's options from the
`HUB_*` settings, HUB_FAILOVER's backups, and the readers of providers that call Hub back.
The worker process wires adapters with them, the web app its callback routes; logging reads
them to redact every secret they hold."""

from __future__ import annotations

from collections.abc import Mapping

from hub.channels import registry
from hub.channels.base import ChannelAdapter, ChannelOptions, ProviderCallbacks
from hub.channels.email.smtp import default_helo_name
from hub.domain import Channel
from hub.settings import Settings


def channel_options(settings: Settings) -> dict[str, ChannelOptions]:
    """Options for the built-in adapters, taking what hub settings say over the environment
    (the webhook secret is derived from the secret key when not set)."""
    given: dict[str, ChannelOptions] = {}
    for name in {*registry.BUILT_IN.values(), *settings.channel_providers.values()}:
        given[name] = _options(settings, registry.adapter_class(name).options_model)
    return given


def callback_readers(settings: Settings) -> list[ProviderCallbacks]:
    """A reader for each installed provider that calls Hub back, built from its adapter's
    options (Twilio's from HUB_TWILIO_AUTH_TOKEN), whether or not Hub sends through it now:
    a status may come back after the provider was changed."""
    return [
        reader.from_options(_options(settings, model))
        for reader, model in registry.callback_readers().values()
    ]


def _options(settings: Settings, model: type[ChannelOptions]) -> ChannelOptions:
    fields = model.model_fields
    overrides = {k: getattr(settings, k) for k in fields if k in Settings.model_fields}
    if "webhook_secret" in fields:
        overrides["webhook_secret"] = settings.webhook_signing_secret()
    if "smtp_helo_name" in fields and not settings.smtp_helo_name:
        overrides["smtp_helo_name"] = default_helo_name(settings.public_url)
    return model(**overrides)


def failover_options(
    settings: Settings, chosen: Mapping[Channel, tuple[type[ChannelAdapter], ChannelOptions]]
) -> dict[Channel, list[ChannelOptions]]:
    """HUB_FAILOVER's overrides applied over each channel's own options (so a backup relay
    shares everything but what it names); a typo is named at start-up."""
    backups: dict[Channel, list[ChannelOptions]] = {}
    for name, overrides in settings.failover.items():
        try:
            channel = Channel(name)
        except ValueError:
            raise ValueError(f"HUB_FAILOVER: {name!r} is not a channel") from None
        cls, options = chosen[channel]
        backups[channel] = [
            cls.options_model.model_validate(options.model_dump() | override)
            for override in overrides
        ]
    return backups
