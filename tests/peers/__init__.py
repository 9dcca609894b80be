"""Real protocol peers on 127.0.0.1 for the tests: SMTP, webhook receiver, Twilio-compatible."""
