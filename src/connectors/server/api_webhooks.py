"""``POST /api/webhooks/{endpoint}``: inbound webhooks, authenticated by their signature.

The body is read as raw bytes before anything parses it. Unknown endpoints and bad signatures
both get ``401`` with no detail; duplicates get ``200`` with ``{"status": "duplicate"}``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from connectors.errors import AuthenticationFailed
from connectors.server.inbound import receive
from connectors.server.runtime import ServerRuntime, runtime

__all__ = ["router"]

router = APIRouter()


@router.post("/api/webhooks/{endpoint}", summary="Receive a signed inbound webhook")
async def inbound_webhook(
    endpoint: str,
    request: Request,
    rt: Annotated[ServerRuntime, Depends(runtime)],
) -> JSONResponse:
    raw = await request.body()
    try:
        outcome = await receive(rt.hub, rt.inbound, endpoint, dict(request.headers), raw)
    except AuthenticationFailed:
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    if outcome.status == "challenge":
        return JSONResponse({"challenge": outcome.challenge})
    return JSONResponse({"status": outcome.status})
