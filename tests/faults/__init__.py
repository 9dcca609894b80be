"""Fault injection (RELIABILITY 1-8): workers killed, Redis lost, peers failing; each test
ends by holding the contact log against what the peers received, and prints its figures."""
