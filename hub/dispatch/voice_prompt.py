"""The opt-out said at the end of every call ("press 9"), in the contact's language."""

from __future__ import annotations

from collections.abc import Mapping

# Hub's own wording; `HUB_VOICE_OPT_OUT` replaces it. The key that stops calls is always 9.
VOICE_OPT_OUT = {
    "en": "To stop these calls, press 9.",
    "ru": "Чтобы больше не получать эти звонки, нажмите 9.",
}


def choose(prompts: Mapping[str, str], locale: str | None) -> str:
    """The prompt for `locale`: ru-RU, then ru, then en, then the first one given."""
    tag = (locale or "").lower()
    for candidate in (tag, tag.split("-")[0], "en"):
        if candidate in prompts:
            return prompts[candidate]
    return next(iter(prompts.values()))
