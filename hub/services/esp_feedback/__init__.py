"""Bounces and complaints that e-mail providers report by webhook instead of by DSN: Amazon
SES (through an SNS topic) and SendGrid's signed event webhook (issue 20, item 4).

Each provider's module checks its signature and reads its events into the
`hub.channels.email.reports.Report` a DSN becomes; `recording` hands each to
`hub.services.bounces.record`, which alone decides what a report changes. Pure parsing and
signature checks live apart from the HTTP that fetches SNS certificates (`sns_client`), so they
are tested without a network. May import hub.services, hub.db, hub.settings and hub.channels.
"""
