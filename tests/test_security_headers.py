"""Security headers on every answer, and a Content-Security-Policy on every HTML page."""

from __future__ import annotations

import pytest

from cds_hooks.routes.sheets import sheet_policy


def test_every_answer_says_nosniff_and_no_referrer(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/cds-services", "/health", "/metrics", "/no-such-page"):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path


def test_the_try_page_keeps_its_own_policy_and_gets_the_common_headers(make_client) -> None:  # type: ignore[no-untyped-def]
    page = make_client(try_page=True).get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "no-referrer"


def test_html_without_its_own_policy_gets_the_strict_default(make_client) -> None:  # type: ignore[no-untyped-def]
    from fastapi.responses import HTMLResponse

    client = make_client()
    client.app.add_api_route("/plain-html", lambda: HTMLResponse("<p>hi</p>"))
    response = client.get("/plain-html")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


def test_a_sheet_may_use_exactly_its_own_inline_styles() -> None:
    policy = sheet_policy("<style>p{color:red}</style><p>x</p>")
    assert "style-src 'sha256-" in policy and "script-src" not in policy
    assert sheet_policy("<p>no style</p>").count("'none'") >= 3
    assert sheet_policy("<style>a</style>") != sheet_policy("<style>b</style>")


def test_the_smart_app_may_not_be_framed_unless_an_ehr_origin_is_listed(make_client) -> None:  # type: ignore[no-untyped-def]
    closed = make_client(smart_app=True).get("/smart/index.html")
    assert closed.status_code == 200
    assert closed.headers["content-security-policy"].endswith("frame-ancestors 'none'")
    assert closed.headers["x-frame-options"] == "DENY"
    framed = make_client(smart_app=True, smart_frame_ancestors="https://ehr.example.org, https://EHR2.example.org:8443")
    for path in ("/smart/index.html", "/smart/launch.html", "/smart/app.js", "/smart/config.json"):
        response = framed.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert policy.endswith("frame-ancestors https://ehr.example.org https://ehr2.example.org:8443"), path
        assert "x-frame-options" not in response.headers  # it would forbid what the policy allows


@pytest.mark.parametrize(
    "origin",
    ["*", "http://ehr.example.org", "https://ehr.example.org/path", "https://ehr.example.org; script-src *", "'self'"],
)
def test_frame_ancestors_take_bare_https_origins_only(origin: str) -> None:
    from pydantic import ValidationError

    from cds_hooks.settings import Settings

    with pytest.raises(ValidationError, match="not an https origin"):
        Settings(smart_frame_ancestors=origin)
