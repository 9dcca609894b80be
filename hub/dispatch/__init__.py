"""The dispatcher's steps: fan out, claim, compose, send, record outcomes and the statuses
providers report, escalate, sweep. No queue code here: the actors in `hub.workers` call these.

Names no vendor: adapters and the readers of their callbacks come from `hub.channels`, wired by
the worker process. Imports domain services, events, persistence, vocabulary and the pure
layer; never campaigns, workers or the web.
"""
