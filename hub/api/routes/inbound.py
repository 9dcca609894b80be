"""/inbound/twilio/*: what Twilio tells Hub, accepted only with a valid X-Twilio-Signature.

The signature covers the URL Twilio was given, so it is checked against HUB_PUBLIC_URL plus
the path (behind a proxy the URL the app sees differs), and every form field. A missing,
forged or tampered signature gets 403 and changes nothing (RELIABILITY 9).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]
from twilio.twiml.messaging_response import MessagingResponse  # type: ignore[import-untyped]
from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped]

from hub.dispatch import provider_status
from hub.services import inbound
from hub.web.deps import RuntimeDep, SessionDep

router = APIRouter(prefix="/inbound/twilio", tags=["inbound"])
MAX_FIELDS = 200


async def signed_form(request: Request, runtime: RuntimeDep) -> dict[str, str]:
    token = runtime.settings.twilio_auth_token
    signature = request.headers.get("x-twilio-signature")
    if token is None or not token.get_secret_value():
        raise HTTPException(403, "Twilio callbacks are refused: HUB_TWILIO_AUTH_TOKEN is not set")
    if not signature:
        raise HTTPException(403, "missing X-Twilio-Signature")
    try:
        body = (await request.body()).decode("utf-8")
        params = dict(parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(403, "X-Twilio-Signature does not match this request") from None
    url = runtime.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not RequestValidator(token.get_secret_value()).validate(url, params, signature):
        raise HTTPException(403, "X-Twilio-Signature does not match this request")
    return params


SignedForm = Annotated[dict[str, str], Depends(signed_form)]


@router.post("/status", status_code=204, response_class=Response)
def twilio_status(form: SignedForm, db: SessionDep, runtime: RuntimeDep) -> Response:
    """Message and call status callbacks. Unknown SIDs are acknowledged and ignored."""
    sid = form.get("MessageSid") or form.get("CallSid")
    status = form.get("MessageStatus") or form.get("CallStatus") or form.get("SmsStatus")
    if sid and status:
        provider_status.apply(
            db,
            provider_status.Callback(
                sid=sid,
                status=status.lower(),
                error_code=form.get("ErrorCode") or None,
                answered_by=form.get("AnsweredBy") or None,
            ),
            hasher=runtime.hasher,
        )
        db.commit()
    return Response(status_code=204)


@router.post("/sms", response_class=Response, responses={200: {"content": {"text/xml": {}}}})
def twilio_sms(form: SignedForm, db: SessionDep, runtime: RuntimeDep) -> Response:
    """Inbound texts: STOP/START act at once, HELP is answered, anything else is kept."""
    sender, body = form.get("From", ""), form.get("Body", "")
    if not sender:
        raise HTTPException(400, "an inbound SMS needs From")
    word = inbound.receive(
        db, sender=sender, body=body, sid=form.get("MessageSid"), hasher=runtime.hasher
    )
    db.commit()
    answer = MessagingResponse()
    if word is inbound.Keyword.HELP:
        answer.message(runtime.settings.sms_help_text)
    return Response(str(answer), media_type="text/xml")


@router.post("/voice", response_class=Response, responses={200: {"content": {"text/xml": {}}}})
def twilio_voice_keypress(form: SignedForm, db: SessionDep, runtime: RuntimeDep) -> Response:
    """The key pressed during one of Hub's calls: 9 stops voice calls to that number."""
    callee = form.get("To", "")
    if not callee:
        raise HTTPException(400, "a keypress callback needs To (the number Hub called)")
    stopped = inbound.keypress(
        db,
        callee=callee,
        digits=form.get("Digits", ""),
        sid=form.get("CallSid"),
        hasher=runtime.hasher,
    )
    db.commit()
    answer = VoiceResponse()
    answer.hangup()  # 9 or another key: the message was heard; nothing more to say
    return Response(
        str(answer), media_type="text/xml", headers={"X-Hub-Opted-Out": str(stopped).lower()}
    )
