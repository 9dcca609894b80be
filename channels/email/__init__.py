"""The e-mail channel: hand-built MIME sent over a pool of SMTP connections."""

from hub.channels.email.smtp import EmailChannel, SmtpOptions

__all__ = ["EmailChannel", "SmtpOptions"]
