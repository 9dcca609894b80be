"""Contact import from CSV or NDJSON, streamed: the API route, the CLI, the console's background
imports and the benchmark call it.

It owns the whole pipeline, each stage in its own module:
`stream` (bytes to checked UTF-8 lines), `rows` (records and their checking, run in worker
processes for big files), `writer` (one batch merged and committed, the events of a PATCH),
`care` (the batch's owners and teams, by `contact_care`'s rules, looked up once per batch),
`inserts` (the two hot INSERTs as driver executemany), `subscribe` (the option that subscribes
every imported person to a topic, through the subscription service) and `pipeline`
(`import_contacts`, which ties them together). A domain service like the rest of
`hub.services`: it imports the schemas, the database models and its sibling services
(contacts, contact_care, subscriptions, actor, errors) and the events outbox, nothing above
them.
"""

from hub.services.imports.pipeline import Tally, import_contacts
from hub.services.imports.rows import ImportFormat, format_for
from hub.services.imports.subscribe import Subscriber, SubscribeTo

__all__ = ["ImportFormat", "SubscribeTo", "Subscriber", "Tally", "format_for", "import_contacts"]
