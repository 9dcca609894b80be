"""Benchmark template rendering: µs per e-mail (subject, ~2 KB HTML in the layout, text).

    .venv/bin/python bench/render.py [--renders 5000]

Compiles once, as a batch does, then renders per recipient with a fresh context each time.
Prints µs per render for the full e-mail and for its parts, so the layout's share is visible.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace

from hub.domain import Channel
from hub.templates import Links, Parts, Renderer, TemplateDoc
from hub.templates.text import html_to_text

SUBJECT = "{{ contact.name }}, your order {{ data.order.number }} has shipped"
HTML = """\
<h1 style="font-size:22px;margin:0 0 16px;">Good news, {{ contact.name }}!</h1>
<p>Your order <strong>{{ data.order.number }}</strong> placed on {{ data.order.placed }} is on
its way. It left our warehouse in {{ data.order.warehouse }} this morning and should arrive
by <strong>{{ data.order.eta }}</strong>.</p>
<table role="presentation" style="width:100%;border-collapse:collapse;margin:16px 0;">
  <tr><th align="left">Item</th><th align="right">Qty</th><th align="right">Price</th></tr>
  {% for line in data.order.lines %}
  <tr>
    <td style="padding:4px 0;border-top:1px solid #eeeeee;">{{ line.title }}</td>
    <td align="right" style="padding:4px 0;border-top:1px solid #eeeeee;">{{ line.qty }}</td>
    <td align="right" style="padding:4px 0;border-top:1px solid #eeeeee;">{{ line.price }}</td>
  </tr>
  {% endfor %}
  <tr><td colspan="2" align="right"><strong>Total</strong></td>
      <td align="right"><strong>{{ data.order.total }}</strong></td></tr>
</table>
<p>Track the parcel with {{ data.carrier|default("our courier") }}:
<a href="{{ data.tracking_url }}" style="color:#0b57d0;">{{ data.tracking_number }}</a>.</p>
<p>If anything is wrong with your order, reply to this e-mail or call us on
{{ data.support_phone }}; we answer every day from 8:00 to 20:00.</p>
<p>Need to change the delivery address or pick a different day? Open the tracking page and
choose <em>Change delivery</em>; changes are free until the courier is out for delivery, and
you can also leave the parcel with a neighbour or at a pick-up point near you.</p>
<p style="margin-top:24px;">Thank you for shopping with us,<br>The {{ topic.name }} team</p>
"""
TEXT = """\
Good news, {{ contact.name }}!

Your order {{ data.order.number }} placed on {{ data.order.placed }} is on its way and should
arrive by {{ data.order.eta }}.
{% for line in data.order.lines %}
- {{ line.title }} x{{ line.qty }}: {{ line.price }}{% endfor %}
Total: {{ data.order.total }}

Track it: {{ data.tracking_url }}
"""


def context(i: int) -> dict[str, object]:
    lines = [
        {"title": f"Item number {n} <special & rare>", "qty": n + 1, "price": f"{9.99 * n:.2f}"}
        for n in range(4)
    ]
    return {
        "contact": {"name": f"Ada Lovelace {i}", "locale": "en-GB", "external_id": str(i)},
        "topic": {"key": "orders", "name": "Acme Shop"},
        "data": {
            "order": {
                "number": f"A-{100000 + i}",
                "placed": "2024-05-01",
                "warehouse": "Leeds",
                "eta": "Friday, 3 May",
                "lines": lines,
                "total": "59.94",
            },
            "tracking_url": f"https://track.example.org/p/{i}?ref=mail&lang=en",
            "tracking_number": f"JD{i:012d}",
            "support_phone": "+44 20 7946 0958",
        },
    }


def per_render(n: int, render: Callable[[int], object], rounds: int = 5) -> float:
    """CPU µs per call, best of `rounds`: the box is shared, so the minimum is the signal."""
    render(0)  # warm
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time()
        for i in range(n):
            render(i)
        best = min(best, time.thread_time() - start)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=2000)
    n = parser.parse_args().renders
    renderer = Renderer(company_name="Acme Shop")
    links = Links("https://hub.example.org/p/tok", "https://hub.example.org/u/tok")
    contexts = [context(i) for i in range(n)]
    both = Parts(email_subject=SUBJECT, email_html=HTML, email_text=TEXT)
    full = renderer.compile(TemplateDoc("shipped", {"": both}))
    html_only = renderer.compile(TemplateDoc("shipped", {"": replace(both, email_text=None)}))
    sample = full.render(Channel.EMAIL, locale="en-GB", context=contexts[0], links=links)
    # The body without the layout: as an SMS part (no escaping, so a little faster than HTML).
    body_only = renderer.compile(TemplateDoc("shipped", {"": Parts(sms_body=HTML)}))
    body = body_only.render(Channel.SMS, locale=None, context=contexts[0], links=links).text
    print(f"HTML template {len(HTML)} chars, rendered body {len(body or '')} chars, ", end="")
    print(f"in the layout {len(sample.html or '')}; text part {len(sample.text or '')} chars")

    def email(i: int) -> object:
        return full.render(Channel.EMAIL, locale="en-GB", context=contexts[i], links=links)

    def derived(i: int) -> object:
        return html_only.render(Channel.EMAIL, locale="en-GB", context=contexts[i], links=links)

    def layout(i: int) -> object:  # what the layout adds to each e-mail
        return renderer.layout.html(body or "", lang="en-GB", subject="Your order", links=links)

    def text_from_html(i: int) -> object:
        return html_to_text(body or "")

    rows = [
        ("e-mail: subject + HTML in layout + text", email),
        ("e-mail, text part derived from the HTML", derived),
        ("the layout alone, around the same body", layout),
        ("html_to_text of the rendered body", text_from_html),
    ]
    for label, render in rows:
        print(f"{label:42} {per_render(n, render):7.1f} µs/render")


if __name__ == "__main__":
    main()
