"""Mail that comes back to Hub: an SMTP/LMTP listener (and a pipe reader) for the bounce and
unsubscribe mailboxes, feeding the same code as POST /inbound/email/bounce and the one-click
unsubscribe."""
