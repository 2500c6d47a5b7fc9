"""How uvicorn serves the app in production: `python -m cds_hooks` and the gunicorn worker share this.

uvicorn's defaults suit a laptop, not a clinical service: it believes X-Forwarded-Proto/-For from
127.0.0.1 (so a local caller could change the scheme the JWT `aud` check sees), writes an access log
with full query strings (tokens included), and announces itself in a Server header. Here proxy
headers are believed only with SPINECDS_TRUST_PROXY_HEADERS=true and only from
SPINECDS_FORWARDED_ALLOW_IPS - by the app itself (cds_hooks/proxy_headers.py, which also covers
X-Forwarded-Host), so uvicorn's own proxy handling is always off - and the access log is off: the
service writes its own JSON request line (cds_hooks/middleware.py) with ids and timings and without
query strings.
"""

from __future__ import annotations

from typing import Any

from .auth_settings import AuthSettings
from .settings import Settings


def uvicorn_options(settings: Settings, auth: AuthSettings) -> dict[str, Any]:
    """Keyword arguments for uvicorn.Config (and uvicorn.run)."""
    # Never uvicorn's: it would rewrite the client address before the app can check that the peer
    # is an allowed proxy (cds_hooks/proxy_headers.py applies SPINECDS_TRUST_PROXY_HEADERS and
    # SPINECDS_FORWARDED_ALLOW_IPS). The arguments stay for callers; only the app reads them now.
    del settings, auth
    return {
        "proxy_headers": False,
        "forwarded_allow_ips": [],
        "access_log": False,
        "server_header": False,
    }


def production_options() -> dict[str, Any]:
    """uvicorn options from the environment. The trusted-clients file is not read here (the app reads
    it); only the proxy setting is needed."""
    return uvicorn_options(Settings(), AuthSettings(trusted_clients_file=None))
