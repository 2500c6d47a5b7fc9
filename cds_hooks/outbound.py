"""The one way the service opens outbound HTTP sessions (EHR FHIR servers, trusted clients' key sets).

`trust_env = False`: requests would otherwise take HTTP(S)_PROXY / ALL_PROXY from the environment
(routing the EHR's bearer token through whatever proxy the host happens to name) and credentials from
~/.netrc (which replace our Authorization header with Basic credentials for that host). The service
talks to the EHR directly; should a proxy ever be needed it will be an explicit setting.
"""

from __future__ import annotations

import requests


def outbound_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session
