"""Settings turned into channel adapter options: each built-in adapter's options from the
`HUB_*` settings, and HUB_FAILOVER's backups. The worker process wires adapters with them;
logging reads them to redact every secret they hold."""

from __future__ import annotations

from collections.abc import Mapping

from hub.channels import registry
from hub.channels.base import ChannelAdapter, ChannelOptions
from hub.domain import Channel
from hub.settings import Settings


def channel_options(settings: Settings) -> dict[str, ChannelOptions]:
    """Options for the built-in adapters, taking what hub settings say over the environment
    (the webhook secret is derived from the secret key when not set)."""
    given: dict[str, ChannelOptions] = {}
    for name in {*registry.BUILT_IN.values(), *settings.channel_providers.values()}:
        cls = registry.adapter_class(name)
        fields = cls.options_model.model_fields
        overrides = {k: getattr(settings, k) for k in fields if k in Settings.model_fields}
        if "webhook_secret" in fields:
            overrides["webhook_secret"] = settings.webhook_signing_secret()
        given[name] = cls.options_model(**overrides)
    return given


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
