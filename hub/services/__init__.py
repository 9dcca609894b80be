"""Domain services: contacts, subscriptions, suppressions, the timeline, templates, imports,
notifications, bounces and what people text or key in. The API, console, CLI, dispatcher and
campaigns call these.

Imports events (the outbox), persistence, vocabulary and the pure layer, never the dispatcher
or anything above it. Provider formats are read in `hub.channels`: a service sees Hub's words.
"""
