"""Benchmark MIME building: MimeBuilder against `EmailMessage` and compat32 `MIMEText`.

    .venv/bin/python bench/mime_build.py [--messages 20000]

Each message is personalised (its own name, address, subject and body), as in a real send. Prints
µs of CPU per message for each builder and the ratio to the hand-built one.
"""

from __future__ import annotations

import argparse
import email.policy
import time
from collections.abc import Callable
from email.headerregistry import Address
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate

from hub.channels.base import OutgoingMessage
from hub.channels.email.mime import MimeBuilder
from hub.domain import Channel

FROM = "Магазин «Ромашка» <shop@example.ru>"
NAMES = ["Иван Петров", "Мария Сидорова-Кузнецова", "Anna Smith", "Константин Константинопольский"]
PARAGRAPH = "Ваш заказ собран и передан в службу доставки. Трек-номер придёт отдельным письмом. "


def messages(count: int) -> list[OutgoingMessage]:
    built = []
    for i in range(count):
        name = NAMES[i % len(NAMES)]
        text = f"Здравствуйте, {name}!\n\n" + PARAGRAPH * 8 + f"\n\nЗаказ №{i}\n"
        html = (
            f"<html><body><h1>Здравствуйте, {name}!</h1>"
            + f"<p>{PARAGRAPH}</p>" * 8
            + f'<p><a href="https://shop.example.ru/orders/{i}">Заказ №{i}</a></p></body></html>'
        )
        built.append(
            OutgoingMessage(
                delivery_id=i,
                channel=Channel.EMAIL,
                key=f"d{i}-5f2c9a",
                to=f"user{i}@example.com",
                to_name=name,
                subject=f"{name.split()[0]}, ваш заказ №{i} отправлен",
                text=text,
                html=html,
                unsubscribe_url=f"https://shop.example.ru/u/{i:08x}",
                unsubscribe_mailto="unsubscribe@example.ru",
                headers={"X-Campaign": "orders"},
            )
        )
    return built


def hand_built(builder: MimeBuilder) -> Callable[[OutgoingMessage], bytes]:
    return lambda message: builder.build(message).data


def with_email_message(message: OutgoingMessage) -> bytes:
    mail = EmailMessage()
    mail["From"] = Address("Магазин «Ромашка»", "shop", "example.ru")
    mail["To"] = Address(message.to_name or "", addr_spec=message.to)
    mail["Subject"] = message.subject or ""
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{message.key}@example.ru>"
    mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>, <mailto:unsubscribe@example.ru>"
    mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail["X-Campaign"] = "orders"
    mail.set_content(message.text or "")
    mail.add_alternative(message.html or "", subtype="html")
    return mail.as_bytes(policy=email.policy.SMTP)


def with_compat32(message: OutgoingMessage) -> bytes:
    mail = MIMEMultipart("alternative")
    mail["From"] = formataddr(("Магазин «Ромашка»", "shop@example.ru"))
    mail["To"] = formataddr((message.to_name or "", message.to))
    mail["Subject"] = message.subject or ""
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{message.key}@example.ru>"
    mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>, <mailto:unsubscribe@example.ru>"
    mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail["X-Campaign"] = "orders"
    mail.attach(MIMEText(message.text or "", "plain", "utf-8"))
    mail.attach(MIMEText(message.html or "", "html", "utf-8"))
    return mail.as_bytes()


def measure(build: Callable[[OutgoingMessage], bytes], batch: list[OutgoingMessage]) -> float:
    """µs of CPU per message."""
    started = time.process_time()
    for message in batch:
        build(message)
    return (time.process_time() - started) / len(batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    count = parser.parse_args().messages
    batch = messages(count)
    slow = batch[: max(count // 20, 200)]  # the stdlib builders are ~100x slower
    builder = MimeBuilder(from_header=FROM)
    size = len(builder.build(batch[0]).data)
    print(f"{count} personalised messages, ~{size:,} bytes each (multipart, Russian text)\n")
    results = [
        ("MimeBuilder (hand-built bytes)", measure(hand_built(builder), batch)),
        ("EmailMessage + as_bytes", measure(with_email_message, slow)),
        ("compat32 MIMEMultipart/MIMEText", measure(with_compat32, slow)),
    ]
    fastest = results[0][1]
    print(f"{'builder':34} {'µs/message':>12} {'messages/s':>12} {'× hand-built':>13}")
    for name, micros in results:
        per_second = 1e6 / micros
        print(f"{name:34} {micros:12.1f} {per_second:12,.0f} {micros / fastest:13.1f}")


if __name__ == "__main__":
    main()
