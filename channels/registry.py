"""Find channel adapters by name in the `hub.channels` entry-point group and build them, and
the readers of the providers among them that call Hub back."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from importlib.metadata import EntryPoint, distributions
from typing import Any

from hub.channels.base import CallbackPaths, ChannelAdapter, ChannelOptions, ProviderCallbacks
from hub.domain import Channel

GROUP = "hub.channels"
BUILT_IN: Mapping[Channel, str] = {
    Channel.EMAIL: "smtp",
    Channel.SMS: "twilio-sms",
    Channel.VOICE: "twilio-voice",
    Channel.WEBHOOK: "webhook",
}
CAPTURE = "capture"


class ChannelConfigError(ValueError):
    """A provider name that is unknown, registered twice, or cannot serve its channel."""


# What `available` found, by the import path it searched: reading every installed package's
# metadata takes a tenth of a second or more, and a process asks for each channel it wires.
_FOUND: dict[tuple[str, ...], dict[str, EntryPoint]] = {}


def available() -> dict[str, EntryPoint]:
    """Every adapter by name. Walks distributions itself: `entry_points()` keeps only the
    first of two packages that claim one name, and that clash must not pass silently. Read
    once per import path (a package installed on a new path is seen)."""
    path = tuple(sys.path)
    found = _FOUND.get(path)
    if found is None:
        found = _FOUND[path] = _scan()
    return dict(found)


def _scan() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    owners: dict[str, str] = {}
    seen: set[str] = set()
    for dist in distributions():
        # The same distribution seen twice on sys.path is one registration, not a clash.
        dist_name = dist.metadata["Name"] or ""
        if dist_name in seen:
            continue
        seen.add(dist_name)
        for point in dist.entry_points.select(group=GROUP):
            if point.name in found and found[point.name].value != point.value:
                raise ChannelConfigError(
                    f"channel adapter {point.name!r} is registered twice: by "
                    f"{owners[point.name]} ({found[point.name].value}) and by {dist_name} "
                    f"({point.value}); uninstall one"
                )
            found[point.name] = point
            owners[point.name] = dist_name
    return found


def adapter_class(name: str) -> type[ChannelAdapter]:
    points = available()
    if name not in points:
        known = ", ".join(sorted(points)) or "none"
        raise ChannelConfigError(f"no channel adapter named {name!r}; installed: {known}")
    return _load(name, points[name])


def callback_readers() -> dict[str, tuple[type[ProviderCallbacks], type[ChannelOptions]]]:
    """Every installed provider that calls Hub back, by its name: its reader, and the options
    model of the adapter that names it (the reader is built from those options). Two readers
    claiming one provider name fail like two adapters claiming one name."""
    found: dict[str, tuple[type[ProviderCallbacks], type[ChannelOptions]]] = {}
    for name, point in sorted(available().items()):
        adapter = _load(name, point)
        reader: type[ProviderCallbacks] | None = getattr(adapter, "callbacks", None)
        if reader is None:
            continue
        known = found.get(reader.provider)
        if known is not None and known[0] is not reader:
            raise ChannelConfigError(
                f"provider {reader.provider!r} has two callback readers: "
                f"{known[0].__qualname__} and {reader.__qualname__} (of {name!r})"
            )
        found.setdefault(reader.provider, (reader, adapter.options_model))
    return found


def _load(name: str, point: EntryPoint) -> type[ChannelAdapter]:
    loaded: Any = point.load()
    for attribute in ("name", "kinds", "options_model", "from_options", "send", "aclose"):
        if not hasattr(loaded, attribute):
            raise ChannelConfigError(f"channel adapter {name!r} has no {attribute!r}")
    cls: type[ChannelAdapter] = loaded
    return cls


def choose(
    providers: Mapping[str, str], options: Mapping[str, ChannelOptions]
) -> dict[Channel, tuple[type[ChannelAdapter], ChannelOptions]]:
    """Pick each channel's adapter and options; nothing is connected yet.

    A channel named in `providers` uses that adapter. Otherwise its built-in adapter is used
    when its options say it is configured, else the capture sink. `options` overrides what
    an adapter would read from the environment (tests, and secrets derived by the caller).
    """
    unknown = set(providers) - {c.value for c in Channel}
    if unknown:
        raise ChannelConfigError(f"HUB_CHANNEL_PROVIDERS names unknown channels: {sorted(unknown)}")
    chosen: dict[Channel, tuple[type[ChannelAdapter], ChannelOptions]] = {}
    for channel in Channel:
        name = providers.get(channel.value, BUILT_IN[channel])
        cls = adapter_class(name)
        if channel not in cls.kinds:
            raise ChannelConfigError(f"channel adapter {name!r} cannot send {channel.value}")
        settings = options.get(name) or cls.options_model()
        if channel.value not in providers and not settings.configured:
            cls = adapter_class(CAPTURE)
            settings = options.get(CAPTURE) or cls.options_model()
        chosen[channel] = (cls, settings)
    return chosen


def callback_paths(
    chosen: Mapping[Channel, tuple[type[ChannelAdapter], ChannelOptions]],
) -> dict[Channel, CallbackPaths]:
    """Where the provider of each chosen adapter calls back, for channels whose provider does
    (the capture sink never does)."""
    found: dict[Channel, CallbackPaths] = {}
    for channel, (cls, _) in chosen.items():
        reader: type[ProviderCallbacks] | None = getattr(cls, "callbacks", None)
        if reader is not None:
            found[channel] = reader.paths
    return found
