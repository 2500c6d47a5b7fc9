"""The gunicorn worker class of the image: `gunicorn -k cds_hooks.gunicorn_worker.SpinecdsWorker`.

uvicorn's own UvicornWorker turns proxy headers on and takes gunicorn's forwarded_allow_ips
(127.0.0.1 by default, or $FORWARDED_ALLOW_IPS); this one applies cds_hooks.serving's options
instead, so the image and `python -m cds_hooks` trust and log exactly the same. Imported only by
gunicorn (the `deploy` extra).
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker

from .serving import production_options


class SpinecdsWorker(UvicornWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # CONFIG_KWARGS is applied last when the worker builds its uvicorn Config.
        self.CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, **production_options()}
        super().__init__(*args, **kwargs)
