"""The hook answer's orjson encoder writes the same bytes Starlette's JSONResponse would."""

from __future__ import annotations

from starlette.responses import JSONResponse

from cds_hooks.responses import FastJSONResponse


def test_same_bytes_as_the_standard_json_response() -> None:
    body = {
        "cards": [
            {
                "summary": "MRI binnen 24 uur – spoed",  # non-ASCII stays UTF-8, not \\u escapes
                "indicator": "critical",
                "source": {"label": "spinecds", "url": "https://example.org/a?b=1&c=2"},
                "extension": {"spinecds": {"sins": 10, "score": 7.5, "flags": [True, False]}},
            }
        ],
        "extension": {"spinecds": {"dataQuality": [{"resource": "Observation/x", "issue": "<not used>"}]}},
    }
    fast = FastJSONResponse(body)
    assert fast.body == JSONResponse(body).body
    assert fast.headers["content-type"] == "application/json"
