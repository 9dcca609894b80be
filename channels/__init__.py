"""Delivery adapters (e-mail, SMS, voice, webhook, capture) behind one small interface.

They arrive with the dispatch issue; this package knows nothing of the web app or database.
"""
