"""How uvicorn serves the app in production: `python -m cds_hooks` and the gunicorn worker share this.

uvicorn's defaults suit a laptop, not a clinical service: it believes X-Forwarded-Proto/-For from
127.0.0.1 (so a local caller could change the scheme the JWT `aud` check sees), writes an access log
with full query strings (tokens included), and announces itself in a Server header. Here proxy
headers are believed only with SPINECDS_TRUST_PROXY_HEADERS=true and only from
SPINECDS_FORWARDED_ALLOW_IPS, and the access log is off: the service writes its own JSON request
line (cds_hooks/middleware.py) with ids and timings and without query strings.
"""

from __future__ import annotations

from typing import Any

from .auth_settings import AuthSettings
from .settings import Settings


def uvicorn_options(settings: Settings, auth: AuthSettings) -> dict[str, Any]:
    """Keyword arguments for uvicorn.Config (and uvicorn.run)."""
    trust = auth.trust_proxy_headers
    return {
        "proxy_headers": trust,
        # Without trust, an empty list: uvicorn then never rewrites scheme or client from headers.
        "forwarded_allow_ips": settings.forwarded_allow_ips if trust else [],
        "access_log": False,
        "server_header": False,
    }


def production_options() -> dict[str, Any]:
    """uvicorn options from the environment. The trusted-clients file is not read here (the app reads
    it); only the proxy setting is needed."""
    return uvicorn_options(Settings(), AuthSettings(trusted_clients_file=None))
