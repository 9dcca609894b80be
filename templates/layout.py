"""The e-mail layout every HTML part is placed in, the text footer, and their wording."""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from hub.templates.model import Links


@dataclass(frozen=True, slots=True)
class FooterWords:
    preferences: str
    unsubscribe: str


FOOTER_WORDS: dict[str, FooterWords] = {
    "en": FooterWords(preferences="Manage your preferences", unsubscribe="Unsubscribe"),
    "ru": FooterWords(preferences="Управлять подписками", unsubscribe="Отписаться"),
}


def footer_words(locale: str) -> FooterWords:
    """The wording for a locale's language ("ru-RU" -> Russian), English when we have none."""
    language = locale.replace("_", "-").split("-", maxsplit=1)[0].lower()
    return FOOTER_WORDS.get(language, FOOTER_WORDS["en"])


# Trusted markup, rendered with autoescape: only `body` is Markup. Inline styles and a plain
# single-column layout because mail clients ignore <style> blocks unevenly; role="article" and
# lang tell screen readers where the message is and how to pronounce it. The footer contrast
# (#555 on #f4f4f4) passes WCAG AA.
HTML_LAYOUT = """\
<!DOCTYPE html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ subject }}</title>
</head>
<body style="margin:0;padding:0;background:#f4f4f4;">
<div role="article" aria-label="{{ subject }}" lang="{{ lang }}" \
style="max-width:600px;margin:0 auto;padding:24px;background:#ffffff;color:#222222;\
font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;">
{{ body }}
</div>
<div role="contentinfo" style="max-width:600px;margin:0 auto;padding:16px 24px;color:#555555;\
font-family:Arial,Helvetica,sans-serif;font-size:13px;line-height:1.5;">
<p style="margin:0 0 8px;">{{ company }}</p>
<p style="margin:0;">
<a href="{{ preferences_url }}" style="color:#555555;">{{ words.preferences }}</a>
&nbsp;&middot;&nbsp;
<a href="{{ unsubscribe_url }}" style="color:#555555;">{{ words.unsubscribe }}</a></p>
</div>
</body>
</html>
"""

# "-- " on its own line is the signature separator mail clients know to fold away.
TEXT_FOOTER = "-- \n{company}\n{preferences}: {preferences_url}\n{unsubscribe}: {unsubscribe_url}\n"


class Layout:
    """Wraps a rendered body for one company; the layout is compiled once, here."""

    def __init__(self, company_name: str) -> None:
        self.company_name = company_name
        # Our own markup, trusted: rendered outside the sandbox, which is slower.
        environment = Environment(autoescape=True, undefined=StrictUndefined)
        self._html = environment.from_string(HTML_LAYOUT)

    def html(self, body: str, *, lang: str, subject: str, links: Links) -> str:
        """`body` is HTML the sandbox has rendered with autoescape, so it goes in as it is."""
        return self._html.render(
            lang=lang,
            subject=subject,
            body=Markup(body),  # noqa: S704 -- escaped already, by the sandbox's autoescape
            company=self.company_name,
            words=footer_words(lang),
            preferences_url=links.preferences_url,
            unsubscribe_url=links.unsubscribe_url,
        )

    def text(self, body: str, *, lang: str, links: Links) -> str:
        words = footer_words(lang)
        footer = TEXT_FOOTER.format(
            company=self.company_name,
            preferences=words.preferences,
            unsubscribe=words.unsubscribe,
            preferences_url=links.preferences_url,
            unsubscribe_url=links.unsubscribe_url,
        )
        return f"{body.strip()}\n\n{footer}"
