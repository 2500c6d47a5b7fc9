"""`python -m cds_hooks`: serve the app with the host and port from the SPINECDS_* settings."""

import uvicorn

from .settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run("cds_hooks.app:app", host=settings.host, port=settings.port, proxy_headers=True)


if __name__ == "__main__":
    main()
