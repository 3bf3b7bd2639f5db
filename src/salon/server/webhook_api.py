"""The server API's webhooks, under ``/api/v1/webhooks``: register endpoints, list and remove
them, and see how their deliveries went (:mod:`salon.server.webhooks` sends them).

Every route needs an API key with the ``webhooks:manage`` scope (:mod:`salon.server.apiauth`);
the router has no CSRF guard, as the key travels in a header only. Refusals are
``{"detail": {"code": …, "message": …}}``; a database that is down is 503
``store_unavailable`` (the app's handler).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from salon.server.apiauth import require_scope
from salon.server.webhooks import (
    EVENT_TYPES,
    MAX_URL_CHARS,
    EventType,
    InvalidWebhook,
    WebhookService,
    check_events,
    check_url,
    new_secret,
)
from salon.store.apikeys import ApiKey
from salon.store.webhooks import Delivery, DeliveryStatus, TooManyWebhooks, Webhook

MAX_DELIVERIES_LISTED: Final = 500
"""``GET /webhooks/{id}/deliveries?limit=`` is at most this."""

WebhookIdPath = Annotated[str, Path(pattern="^[A-Za-z0-9_-]{1,32}$")]
Manager = Annotated[ApiKey, Depends(require_scope("webhooks:manage"))]


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class WebhookProblem(BaseModel):
    """Why a request was refused: a stable ``code`` and a sentence."""

    code: str
    message: str


class WebhookProblemResponse(BaseModel):
    detail: WebhookProblem


class WebhookRequest(BaseModel):
    """An endpoint to POST events to."""

    model_config = _examples(
        {"url": "https://lms.example.org/salon-events"},
        {"url": "https://hooks.example.org/x", "events": ["meeting_started", "meeting_ended"]},
    )

    # http:// or https:// with a host (a valid host name, no control characters, a port from
    # 1 to 65535). Redirects are not followed: give the final URL.
    url: str = Field(json_schema_extra={"maxLength": MAX_URL_CHARS, "format": "uri"})
    # The events it gets; leave it out for all of them.
    events: list[EventType] | None = None


class WebhookInfo(BaseModel):
    model_config = _examples(
        {
            "id": "wh_Xy3kP0aLmQ2z",
            "url": "https://lms.example.org/salon-events",
            "events": list(EVENT_TYPES),
            "created_ms": 1767225600000,
        }
    )

    id: str
    url: str
    events: list[EventType]
    created_ms: int  # Unix ms


class WebhookCreated(WebhookInfo):
    model_config = _examples(
        {
            "id": "wh_Xy3kP0aLmQ2z",
            "url": "https://lms.example.org/salon-events",
            "events": list(EVENT_TYPES),
            "created_ms": 1767225600000,
            "secret": "whsec_9MQBOC41ceozujjNkIMwpeitIgCHpymy",
        }
    )

    # Verifies the webhook-signature header (Standard Webhooks): shown here only, keep it.
    secret: str


class DeliveryInfo(BaseModel):
    model_config = _examples(
        {
            "id": "msg_01JGZK5N3Q8V7W2X4Y6Z8A0B2C",
            "event_type": "member_joined",
            "status": "pending",
            "attempts": 2,
            "last_status_code": 503,
            "last_error": "answered HTTP 503",
            "created_ms": 1767225600000,
            "last_attempt_ms": 1767225601010,
            "next_attempt_ms": 1767225603050,
            "delivered_ms": None,
        }
    )

    id: str  # the webhook-id header, the same on every attempt
    event_type: str
    status: DeliveryStatus
    attempts: int  # made so far
    last_status_code: int | None  # the last answer's HTTP status; null: none came
    last_error: str | None  # why the last attempt failed; null once delivered
    created_ms: int  # Unix ms, when the event happened
    last_attempt_ms: int | None
    next_attempt_ms: int | None  # while pending; null once delivered or failed
    delivered_ms: int | None


class WebhookList(BaseModel):
    webhooks: list[WebhookInfo]  # oldest first


class DeliveryList(BaseModel):
    deliveries: list[DeliveryInfo]  # newest first


def _problem(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status, detail={"code": code, "message": message})


def _service(request: Request) -> WebhookService:
    service: WebhookService = request.app.state.webhooks
    return service


def _info(hook: Webhook) -> dict[str, Any]:
    return {"id": hook.id, "url": hook.url, "events": hook.events, "created_ms": hook.created_ms}


def _delivery(x: Delivery) -> DeliveryInfo:
    return DeliveryInfo(
        id=x.id,
        event_type=x.event_type,
        status=x.status,
        attempts=x.attempts,
        last_status_code=x.last_status_code,
        last_error=x.last_error,
        created_ms=x.created_ms,
        last_attempt_ms=x.last_attempt_ms,
        next_attempt_ms=x.next_attempt_ms if x.status == "pending" else None,
        delivered_ms=x.delivered_ms,
    )


_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": WebhookProblemResponse, "description": "no API key, or a wrong or revoked one"},
    403: {"model": WebhookProblemResponse, "description": "the key lacks webhooks:manage"},
}
_404: dict[int | str, dict[str, Any]] = {
    404: {"model": WebhookProblemResponse, "description": "no such webhook"}
}


def build_webhook_router() -> APIRouter:
    """The webhook routes. No CSRF guard: they take an API key from a header only."""
    router = APIRouter(prefix="/api/v1", tags=["server API: webhooks"], responses=_AUTH)

    @router.post(
        "/webhooks",
        status_code=201,
        summary="Register a webhook",
        responses={
            409: {"model": WebhookProblemResponse, "description": "too_many_webhooks"},
            422: {"model": WebhookProblemResponse, "description": "invalid_webhook"},
        },
    )
    async def add_webhook(request: Request, _key: Manager, body: WebhookRequest) -> WebhookCreated:
        """Register an endpoint for ``events`` (all when left out). The answer holds the
        signing ``secret``, shown this once. 422 ``invalid_webhook``: the URL is not http(s)
        with a host, is longer than 2000 characters, or is one the HTTP client would refuse
        (a control character, a host name that does not IDNA-encode, a port outside
        1–65535), or ``events`` is empty; 409
        ``too_many_webhooks``: ``webhooks.max_endpoints`` are registered already."""
        service = _service(request)
        try:
            url = check_url(body.url)
            events = check_events(body.events)
        except InvalidWebhook as exc:
            raise _problem(422, "invalid_webhook", str(exc)) from None
        secret = new_secret()
        limit = service.settings.max_endpoints
        try:
            hook = await service.store.add(url, secret, events, service.clock.wall_ms(), limit)
        except TooManyWebhooks:
            raise _problem(409, "too_many_webhooks", f"at most {limit} webhooks") from None
        return WebhookCreated(**_info(hook), secret=secret)

    @router.get("/webhooks", summary="List webhooks")
    async def list_webhooks(request: Request, _key: Manager) -> WebhookList:
        """Every registered endpoint, oldest first (never their secrets)."""
        hooks = await _service(request).store.endpoints()
        return WebhookList(webhooks=[WebhookInfo(**_info(hook)) for hook in hooks])

    @router.delete(
        "/webhooks/{webhook_id}", status_code=204, summary="Remove a webhook", responses=_404
    )
    async def remove_webhook(request: Request, _key: Manager, webhook_id: WebhookIdPath) -> None:
        """Remove an endpoint and its deliveries, pending ones too: nothing more is sent."""
        if not await _service(request).store.remove(webhook_id):
            raise _problem(404, "no_such_webhook", "no such webhook")

    @router.get(
        "/webhooks/{webhook_id}/deliveries", summary="List a webhook's deliveries", responses=_404
    )
    async def list_deliveries(
        request: Request,
        _key: Manager,
        webhook_id: WebhookIdPath,
        status: DeliveryStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_DELIVERIES_LISTED)] = 50,
    ) -> DeliveryList:
        """An endpoint's deliveries, newest first: at most ``limit`` (1 to 500), only those in
        ``status`` when given. Delivered and failed ones are kept ``webhooks.retention_days``."""
        store = _service(request).store
        if await store.get(webhook_id) is None:
            raise _problem(404, "no_such_webhook", "no such webhook")
        found = await store.deliveries(webhook_id, status, limit)
        return DeliveryList(deliveries=[_delivery(x) for x in found])

    return router
