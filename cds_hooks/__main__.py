"""`python -m cds_hooks`: serve the app with the host, port and proxy settings from SPINECDS_*.

The production entry point for a single process; the image runs the same options under gunicorn
(cds_hooks/gunicorn_worker.py). See cds_hooks/serving.py for what is turned off and why.
"""

import uvicorn

from .serving import production_options
from .settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run("cds_hooks.app:app", host=settings.host, port=settings.port, **production_options())


if __name__ == "__main__":
    main()
