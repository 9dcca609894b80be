"""The e-mail channel: hand-built MIME (`mime`) sent over a pool of SMTP connections
(`smtp`), and the delivery-status and abuse reports that come back, read (`reports`)."""

from hub.channels.email.smtp import EmailChannel, SmtpOptions

__all__ = ["EmailChannel", "SmtpOptions"]
