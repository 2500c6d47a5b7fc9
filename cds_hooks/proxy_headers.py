"""Forwarded headers believed only from the proxies named in SPINECDS_FORWARDED_ALLOW_IPS.

uvicorn's own proxy handling covers X-Forwarded-Proto and -For, but the JWT audience check (without
SPINECDS_EXTERNAL_BASE_URL) also reads X-Forwarded-Host, which uvicorn passes through from anyone:
a caller reaching the pod directly could pick the audience its token names. So the app does it
itself, before anything else sees the request: from a peer outside the allowlist every X-Forwarded-*
header is dropped; from an allowed proxy, uvicorn's middleware applies -Proto and -For as usual and
-Host stays for the audience check. uvicorn is then run with its own proxy handling off
(cds_hooks/serving.py): it would rewrite the client address before this check could see the peer.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

FORWARDED = (b"x-forwarded-", b"forwarded")


class TrustedProxyHeadersMiddleware:
    def __init__(self, app: ASGIApp, trusted_hosts: list[str]) -> None:
        self.proxy = ProxyHeadersMiddleware(app, trusted_hosts=trusted_hosts)  # type: ignore[arg-type]

    def trusts(self, scope: Scope) -> bool:
        client = scope.get("client")
        return client is not None and client[0] in self.proxy.trusted_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.trusts(scope):
            headers = [(name, value) for name, value in scope["headers"] if not name.lower().startswith(FORWARDED)]
            scope = {**scope, "headers": headers}
        await self.proxy(scope, receive, send)  # type: ignore[arg-type]
