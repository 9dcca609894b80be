"""A provider's per-recipient status and diagnostic, read by the same classifier as every DSN
(`hub.channels.email.bounce_class`), so a 5.1.1 means the same from SES, SendGrid or Postfix.

Providers report a failure they have given up on (a bounce event, not a deferral): that is a
DSN's `Action: failed`, under which a 4.x.x is a soft bounce rather than a delay.
"""

from __future__ import annotations

from hub.channels.email import bounce_class
from hub.channels.email.reports import Kind


def kind_of(status: str | None, detail: str | None, *, gave_up: bool) -> Kind:
    """The kind of one recipient's failure; `gave_up`: the provider stopped trying."""
    return bounce_class.classify(
        action="failed" if gave_up else "delayed", status=status, detail=detail
    )


def has_clue(status: str | None, detail: str | None) -> bool:
    """Whether the code or the words say why; a bare 5.0.0 with no words does not."""
    return bounce_class.is_specific(status) or bounce_class.has_clue(detail)


def best_status(status: str | None, detail: str | None) -> str | None:
    """The status code to record, and only the code (`5.1.1`, never the provider's whole
    field, which a column of 32 characters could not hold): the given one unless it is a
    generic x.0.0 and the diagnostic quotes a specific code (`550 5.1.1 <a@b>: user
    unknown`); None when neither holds a code."""
    code = bounce_class.status_in(status, success=True)
    if bounce_class.is_specific(code):
        return code
    return bounce_class.status_in(detail) or code
