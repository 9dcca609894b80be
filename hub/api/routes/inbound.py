"""/inbound/<provider>/*: what providers tell Hub (statuses, texts, keypresses), each accepted
only once the provider's reader has shown it is theirs.

One router per installed provider that calls back (Twilio: /inbound/twilio/status, /sms and
/voice), at the paths its adapter names. A signature covers the URL the provider was given, so
it is checked against HUB_PUBLIC_URL plus the path (behind a proxy the URL the app sees
differs). A missing, forged or tampered one gets 403 and changes nothing (RELIABILITY 9).
"""

# No `from __future__ import annotations`: the routes are made per provider, inside `router`,
# and FastAPI reads a route's annotations as objects (strings would name locals it cannot see).
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from hub.api import errors
from hub.channel_config import callback_readers
from hub.channels.base import (
    CallbackRequest,
    MalformedCallback,
    ProviderCallbacks,
    UnverifiedCallback,
)
from hub.dispatch import provider_status
from hub.domain import Channel
from hub.services import inbound
from hub.settings import Settings
from hub.web.deps import RuntimeDep, SessionDep


def routers(settings: Settings) -> list[APIRouter]:
    """The callback routes of every installed provider that calls Hub back."""
    return [router(reader) for reader in callback_readers(settings)]


def router(reader: ProviderCallbacks) -> APIRouter:
    """`reader`'s routes. Their names are `twilio_status`, `twilio_sms` and
    `twilio_voice_keypress` for Twilio, and their operation ids `inbound.` and the name."""
    routes = APIRouter(tags=["inbound"])
    name, paths = reader.provider, reader.paths
    unsigned = errors.problem(
        f"No valid {name} signature for HUB_PUBLIC_URL plus the path; nothing was changed"
    )
    malformed = errors.problem(f"Signed, but not a {name} callback Hub can read")
    answers: dict[int | str, dict[str, Any]] = {
        200: {"content": {reader.answer_type: {}}, "description": f"The answer {name} reads"},
        400: malformed,
        403: unsigned,
    }

    async def verified(request: Request, runtime: RuntimeDep) -> Mapping[str, str]:
        url = runtime.settings.public_url.rstrip("/") + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        try:
            return reader.verified(
                CallbackRequest(url=url, headers=request.headers, body=await request.body())
            )
        except UnverifiedCallback as exc:
            raise HTTPException(403, str(exc)) from None

    Fields = Annotated[Mapping[str, str], Depends(verified)]

    def status(fields: Fields, db: SessionDep, runtime: RuntimeDep) -> Response:
        """Message and call status callbacks. Unknown message ids are acknowledged and ignored.

        The new state is written on the delivery and the contact's timeline; a failure the
        provider reports as permanent suppresses the number. Checked by the provider's
        signature, not an API key."""
        update = reader.status(fields)
        if update is not None:
            provider_status.apply(db, update, hasher=runtime.hasher)
            db.commit()
        return Response(status_code=204)

    routes.add_api_route(
        paths.status,
        status,
        methods=["POST"],
        name=f"{name}_status",
        operation_id=f"inbound.{name}_status",
        summary=f"Take a {name} status callback",
        status_code=204,
        response_class=Response,
        responses={204: {"description": "Taken (or ignored)"}, 403: unsigned},
    )

    def text(fields: Fields, db: SessionDep, runtime: RuntimeDep) -> Response:
        """Inbound texts: STOP/START act at once, HELP is answered, anything else is kept.

        Every text is written on the sender's timeline. Checked by the provider's signature,
        not an API key."""
        try:
            received = reader.text(fields)
        except MalformedCallback as exc:
            raise HTTPException(400, str(exc)) from None
        word = inbound.receive(db, received, hasher=runtime.hasher)
        db.commit()
        reply = runtime.settings.sms_help_text if word is inbound.Keyword.HELP else None
        return Response(reader.answer_text(reply), media_type=reader.answer_type)

    if paths.text:
        routes.add_api_route(
            paths.text,
            text,
            methods=["POST"],
            name=f"{name}_{Channel.SMS.value}",
            operation_id=f"inbound.{name}_{Channel.SMS.value}",
            summary=f"Take a text sent to a {name} number",
            response_class=Response,
            responses=answers,
        )

    def keypress(fields: Fields, db: SessionDep, runtime: RuntimeDep) -> Response:
        """The key pressed during one of Hub's calls: 9 stops voice calls to that number.

        The answer's `X-Hub-Opted-Out` header says whether it did. Checked by the provider's
        signature, not an API key."""
        try:
            pressed = reader.keypress(fields)
        except MalformedCallback as exc:
            raise HTTPException(400, str(exc)) from None
        stopped = inbound.keypress(db, pressed, hasher=runtime.hasher)
        db.commit()
        return Response(
            reader.answer_keypress(),
            media_type=reader.answer_type,
            headers={"X-Hub-Opted-Out": str(stopped).lower()},
        )

    if paths.keypress:
        routes.add_api_route(
            paths.keypress,
            keypress,
            methods=["POST"],
            name=f"{name}_{Channel.VOICE.value}_keypress",
            operation_id=f"inbound.{name}_{Channel.VOICE.value}_keypress",
            summary=f"Take a key pressed during a {name} call",
            response_class=Response,
            responses=answers,
        )
    return routes
