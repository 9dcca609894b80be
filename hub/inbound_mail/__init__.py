"""Mail that comes back to Hub: an SMTP/LMTP listener (and a pipe reader) for the bounce and
unsubscribe mailboxes, feeding the same code as POST /inbound/email/bounce and the one-click
unsubscribe.

`mailboxes` says which address is which mailbox, `handling` what is done with one message,
`guard` how many connections and how much time a client gets, `listener` the aiosmtpd server,
`pipe` one message from an MTA's pipe, and `cli` the `hub inbound-mail` command, which
`hub.cli` registers (this package sits below it and may not import it).

May import the layers below the web it needs (the runtime, the services, settings, link
tokens, the e-mail channel's report reader, the domain) and aiosmtpd; never the API, the
console, the self-service pages, `hub.web` or `hub.app`.
"""
