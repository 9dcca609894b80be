"""Real mail software for the tests: a private Postfix on loopback, SpamAssassin's scoring."""
