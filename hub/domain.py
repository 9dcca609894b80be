"""The vocabulary every layer shares: channels, kinds, statuses, reasons, actors.

Standard library only, so `channels/`, `preferences/` and `templates/` can import it
without pulling in the web app or the database.
"""

from __future__ import annotations

import enum


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    VOICE = "voice"
    WEBHOOK = "webhook"


class ContactKind(enum.StrEnum):
    CLIENT = "client"
    EMPLOYEE = "employee"


class TopicCategory(enum.StrEnum):
    """What rules a topic's messages follow. Marketing messages keep the legal window for SMS
    and calls, the frequency caps and the marketing-mail headers; transactional ones (an order
    shipped, a password reset) go when they are due. Whether a person may unsubscribe is a
    separate question (`Topic.required`)."""

    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"


class ImportState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Audience(enum.StrEnum):
    CLIENTS = "clients"
    EMPLOYEES = "employees"
    ALL = "all"

    def includes(self, kind: ContactKind) -> bool:
        if self is Audience.ALL:
            return True
        return (self is Audience.CLIENTS) == (kind is ContactKind.CLIENT)


class SubscriptionStatus(enum.StrEnum):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    PENDING = "pending"  # double opt-in sent, not yet confirmed: does not count


class Frequency(enum.StrEnum):
    IMMEDIATE = "immediate"
    DAILY = "daily"
    WEEKLY = "weekly"


class SuppressionReason(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    SMS_STOP = "sms_stop"
    VOICE_OPT_OUT = "voice_opt_out"
    CARRIER_OPT_OUT = "carrier_opt_out"
    ENDPOINT_GONE = "endpoint_gone"  # a webhook answered 410 Gone: Standard Webhooks' "stop"
    MANUAL = "manual"
    ERASURE = "erasure"
    COOL_DOWN = "cool_down"  # a refusal lifted by someone else: still nothing for a while

    @property
    def blocks_transactional(self) -> bool:
        """Whether this suppression also stops transactional messages (`TopicCategory`).

        An erasure keeps a person uncontactable for marketing; one who comes back must still
        get their password reset and their order updates. Every other reason is a statement
        about the address itself and beats any subscription.
        """
        return self is not SuppressionReason.ERASURE


# The suppressions the person asked for themselves: their refusal (a cool-down guards it, the
# client topics tell it, the manager figures count it).
PERSONS_REFUSALS = frozenset(
    {
        SuppressionReason.SMS_STOP,
        SuppressionReason.COMPLAINT,
        SuppressionReason.CARRIER_OPT_OUT,
        SuppressionReason.VOICE_OPT_OUT,
    }
)


class EventType(enum.StrEnum):
    CONTACT_CREATED = "contact.created"
    CONTACT_UPDATED = "contact.updated"
    SUBSCRIPTION_CHANGED = "subscription.changed"
    PREFERENCES_CHANGED = "preferences.changed"
    SUPPRESSION_ADDED = "suppression.added"
    SUPPRESSION_REMOVED = "suppression.removed"
    INBOUND_MESSAGE = "inbound.message"  # the person wrote to us: a contact too
    DELIVERY_SENT = "delivery.sent"
    DELIVERY_DELIVERED = "delivery.delivered"
    DELIVERY_BOUNCED = "delivery.bounced"  # a DSN or complaint after the send; reason says which
    DELIVERY_FAILED = "delivery.failed"
    DELIVERY_RETRYING = "delivery.retrying"
    DELIVERY_UNKNOWN = "delivery.unknown"
    DELIVERY_REFUSED = "delivery.refused"
    DELIVERY_DEFERRED = "delivery.deferred"
    DELIVERY_OPENED = "delivery.opened"  # the pixel was fetched; `changes.machine` if a proxy
    DELIVERY_CLICKED = "delivery.clicked"  # a tracked link was followed; `changes.link`
    # A named recipient's notification waits for its send_at, or was cancelled before it went
    NOTIFICATION_SCHEDULED = "notification.scheduled"
    NOTIFICATION_CANCELLED = "notification.cancelled"
    # An employee became (or stopped being) a client's owner: on the employee's own timeline
    CLIENT_ASSIGNED = "client.assigned"
    # Why the person unsubscribed, if they chose to say (`reason` a RefusalWhy, `changes.note`)
    REFUSAL_REASON = "refusal.reason"


class ClientTopic(enum.StrEnum):
    """The system topics fed by what happens to clients, for the employees who look after
    them (issue 21). Each exists from the first time its key is looked up."""

    REPLIES = "clients.replies"  # the client wrote back (an inbound text that is no keyword)
    REFUSALS = "clients.refusals"  # STOP, unsubscribe, one-click, voice opt-out, complaint; why
    FAILURES = "clients.failures"  # a delivery bounced or failed for good
    PREFERENCES = "clients.preferences"  # the client changed a subscription or preferences
    CLICKS = "clients.clicks"  # the client followed a tracked link


class ClientScope(enum.StrEnum):
    """Whose clients a subscription to a `ClientTopic` hears about."""

    MINE = "mine"  # the clients the employee owns
    TEAMS = "teams"  # the clients of any team the employee belongs to
    ALL = "all"  # every client: only for an employee whose staff account may see all


class RefusalWhy(enum.StrEnum):
    """What a person who unsubscribed may answer to "would you tell us why?"."""

    TOO_MANY = "too_many"
    NOT_RELEVANT = "not_relevant"
    NEVER_SIGNED_UP = "never_signed_up"
    OTHER = "other"


class DeliveryState(enum.StrEnum):
    """One notification to one person on one channel, from decision to outcome.

    `queued` rows wait for a worker (or for `next_attempt_at`); `sending` rows are claimed
    under a lease; a lease that runs out means the worker died mid-send, so the outcome is
    `unknown` until a resend under the same key (e-mail, webhook) or a look-up settles it.
    """

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    BOUNCED = "bounced"
    SUPPRESSED = "suppressed"  # refused before sending; `reason` says why
    DEFERRED = "deferred"  # quiet hours, legal window or digest; `next_attempt_at` says until
    UNKNOWN = "unknown"  # the provider may or may not have it

    @property
    def final(self) -> bool:
        return self in _FINAL_DELIVERY_STATES


_FINAL_DELIVERY_STATES = frozenset(
    {
        DeliveryState.SENT,
        DeliveryState.DELIVERED,
        DeliveryState.FAILED,
        DeliveryState.BOUNCED,
        DeliveryState.SUPPRESSED,
        DeliveryState.UNKNOWN,
    }
)


class NotificationState(enum.StrEnum):
    SCHEDULED = "scheduled"  # committed, waiting for its send_at (the sweeper starts it)
    ACCEPTED = "accepted"  # committed; fan-out not finished (the sweeper resumes it)
    FANNED_OUT = "fanned_out"  # every recipient has its delivery rows
    CANCELLED = "cancelled"  # cancelled before its fan-out began: nothing was sent


class EventMessageState(enum.StrEnum):
    """One timeline event on its way to one registered endpoint of another service."""

    PENDING = "pending"  # waiting for its first attempt or for `due_at` (the next retry)
    SENDING = "sending"  # claimed under a lease; past it, the sweeper hands it out again
    DELIVERED = "delivered"
    FAILED = "failed"  # the retry schedule ran out, or the endpoint can never take it


class ActorKind(enum.StrEnum):
    API_KEY = "api_key"
    STAFF = "staff"
    SELF_SERVICE = "self_service"
    INBOUND = "inbound"
    CLI = "cli"
    SYSTEM = "system"


class Scope(enum.StrEnum):
    NOTIFY = "notify"
    CONTACTS = "contacts"
    CAMPAIGNS = "campaigns"
    ADMIN = "admin"
    METRICS = "metrics"  # GET /metrics only: what a Prometheus scraper is given


class StaffRole(enum.StrEnum):
    ADMIN = "admin"
    MARKETER = "marketer"
    VIEWER = "viewer"


class SessionRevoked(enum.StrEnum):
    """Why a staff session ended before its expiry."""

    SIGNED_OUT = "signed_out"
    SIGNED_IN_AGAIN = "signed_in_again"  # the browser signed in anew: a new session id
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a secret
    DISABLED = "disabled"
    SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"


class RefusalReason(enum.StrEnum):
    """Why the resolver will not use a channel. A refusal is a contact decision worth keeping."""

    WRONG_AUDIENCE = "wrong_audience"
    NOT_SUBSCRIBED = "not_subscribed"
    PENDING_CONFIRMATION = "pending_confirmation"
    UNSUBSCRIBED = "unsubscribed"
    UNSUBSCRIBED_ALL = "unsubscribed_all"
    CHANNEL_NOT_ALLOWED = "channel_not_allowed"
    CHANNEL_BLOCKED = "channel_blocked"
    NO_ADDRESS = "no_address"
    SUPPRESSED = "suppressed"
    NO_CONTENT = "no_content"  # the message has no part for this channel
    FREQUENCY_CAP = "frequency_cap"  # over the topic's (or the hub's) messages per day/week


class DeferralReason(enum.StrEnum):
    QUIET_HOURS = "quiet_hours"
    LEGAL_WINDOW = "legal_window"
    DIGEST = "digest"
    LOCAL_TIME = "local_time"  # a campaign for 10:00 in each recipient's own zone
    THROTTLED = "throttled"  # a campaign's messages per minute per channel
    PAUSED = "paused"  # its campaign is paused; resumed by hand
    FREQUENCY_CAP = "frequency_cap"  # waits until the oldest message leaves the window
    ESCALATION = "escalation"  # a later step of an escalation chain waits for its turn


class WithdrawalReason(enum.StrEnum):
    """Why the hub itself stopped a planned delivery before sending it (state `suppressed`):
    not the person's rules (`RefusalReason`), but what happened since it was planned."""

    CHAIN_STOPPED = "chain_stopped"  # an earlier step did what the step's `unless` asks
    CONTACT_ERASED = "contact_erased"
    CANCELLED = "cancelled"  # its campaign was cancelled


class FailureReason(enum.StrEnum):
    """Why a delivery that was sent, or tried, ended `failed` or `unknown`.

    A refusal that also suppresses the address is recorded as its `SuppressionReason`
    (`hard_bounce`, `carrier_opt_out`, `endpoint_gone`) instead.
    """

    REJECTED = "rejected"  # the provider refused this message for good
    GAVE_UP = "gave_up"  # transient failures outlasted the attempts: a dead letter to replay
    NO_ANSWER = "no_answer"  # no answer came, and a resend could reach the person twice
    WORKER_LOST = "worker_lost"  # the worker stopped mid-send, on a channel not safe to resend
    TWILIO = "twilio"  # Twilio's status callback said so; detail: its status (undelivered, busy)
    # A bounce report: the receiving server refused it as spam or by policy (5.7.x). About the
    # message or the sender, not the person: nobody is suppressed for it.
    BLOCKED = "blocked"


class SoftBounceCause(enum.StrEnum):
    """Why a soft bounce was a final failure of its delivery (stored as the detail of its
    `soft_bounce:` reason); the address stays usable, only repeated ones suspend it."""

    MAILBOX_FULL = "mailbox_full"  # x.2.2, over quota
    TOO_LARGE = "too_large"  # x.2.3 or x.3.4: too big for this mailbox or system
    EXPIRED = "expired"  # Action: failed with a 4.x.x status: a relay gave up after retrying


class DeliveryNote(enum.StrEnum):
    """What a provider added about a delivery that went (sent or delivered)."""

    ANSWERED_BY = "answered_by"  # not a person took the call; detail: machine_start, fax...


REASON_LENGTH = 64  # the `reason` column of a delivery


def delivery_reason(reason: enum.StrEnum, detail: str | None = None) -> str:
    """A delivery's `reason` as stored: the reason's value, then `:detail` when there is one
    (`suppressed:hard_bounce`, `twilio:undelivered`), cut to the column's length. Stored
    strings are read by the API's callers and kept in old rows: this format does not change."""
    text = f"{reason.value}:{detail}" if detail else reason.value
    return text[:REASON_LENGTH]


class CampaignState(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # waiting for its next occurrence
    SENDING = "sending"  # an occurrence is being fanned out and delivered
    DONE = "done"
    PAUSED = "paused"
    CANCELLED = "cancelled"


ADDRESS_FIELD: dict[Channel, str] = {
    Channel.EMAIL: "email",
    Channel.SMS: "phone",
    Channel.VOICE: "phone",
    Channel.WEBHOOK: "webhook_url",
}
"""The contact field that holds each channel's address."""


class EngagementKind(enum.StrEnum):
    OPEN = "open"
    CLICK = "click"


class AgentClass(enum.StrEnum):
    """What fetched a pixel or followed a link, as far as its request tells."""

    BROWSER = "browser"  # a desktop web browser
    MOBILE = "mobile"  # a phone's browser or mail app
    MAIL_CLIENT = "mail_client"  # Outlook, Thunderbird, Apple Mail fetching images itself
    PRIVACY_PROXY = "privacy_proxy"  # Apple Mail Privacy Protection, Gmail's image proxy
    LINK_SCANNER = "link_scanner"  # a mail filter checking links before the person sees them
    UNKNOWN = "unknown"


class MachineReason(enum.StrEnum):
    """Why an open or click is counted as a machine's, not a person's."""

    PRIVACY_PROXY = "privacy_proxy"  # a proxy that fetches every image of every message
    SCANNER_AGENT = "scanner_agent"  # a known link scanner's or a script's user agent
    HEAD_REQUEST = "head_request"  # people's browsers GET; checkers ask HEAD
    TOO_SOON = "too_soon"  # seconds after it was sent: before a person could have read it
    ALL_LINKS = "all_links"  # several links of one message within a moment of each other


class EscalationUnless(enum.StrEnum):
    """What an earlier step must achieve for a later escalation step not to go."""

    REACHED = "reached"  # delivered, or accepted by a channel that reports nothing more
    OPENED = "opened"  # a person (not a machine) opened it
    CLICKED = "clicked"  # a person (not a machine) followed one of its links
