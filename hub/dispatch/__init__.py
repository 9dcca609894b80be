"""The dispatcher's steps: accept, fan out, claim, send, record, sweep. No queue code here."""
