"""gunicorn settings for spinecds: `gunicorn -c deploy/gunicorn.conf.py cds_hooks.app:app`.

The Dockerfile's CMD passes worker class, worker count and bind on the command line too (the
command line wins over this file), so the image runs the same without this file.

Every worker is a separate process with its own rule engine (durable-rules serialises evaluations
within a process), so throughput scales with workers, not threads: 1-2 workers per CPU core.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Must be in the environment before any worker imports prometheus_client: the library picks its
# storage (in-memory or shared files) at import time. Workers fork from this master and inherit it.
METRICS_DIR = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/spinecds-metrics")

# Imported here, after the line above and before any worker exists, not inside child_exit: that
# hook runs in a SIGCHLD handler, and a second worker's exit during the first import re-entered it
# ("cannot import name 'Gauge' from partially initialized module" when 4 workers stopped at once).
from prometheus_client import multiprocess  # noqa: E402

bind = f"0.0.0.0:{os.environ.get('SPINECDS_PORT', '8000')}"
# uvicorn's worker with the service's own proxy-header and logging options (cds_hooks/serving.py).
worker_class = "cds_hooks.gunicorn_worker.SpinecdsWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# A hook call has a ~500 ms budget (FHIR fallback at most 2.5 s): a worker silent for 30 s is stuck.
timeout = 30
# Less than Kubernetes' terminationGracePeriodSeconds (30 s), so in-flight hook calls finish first.
graceful_timeout = 20
# Longer than the idle timeout of the load balancer in front (60 s on most), so the balancer,
# not gunicorn, closes idle connections and never sends onto a connection being closed.
keepalive = 75
# Recycle workers now and then: durable-rules is a C extension we cannot audit for slow leaks.
# The jitter keeps the workers from restarting at the same moment.
max_requests = 20000
max_requests_jitter = 2000

# The heartbeat files live in memory: the root file system is read-only in the container.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# The service writes one JSON access line per request itself (ids and timings, no query strings);
# gunicorn's access log would duplicate it and print request paths verbatim.
accesslog = None
# gunicorn's own proxy trust: none (the worker decides what uvicorn believes, from SPINECDS_* settings).
forwarded_allow_ips = ""
errorlog = "-"
loglevel = os.environ.get("SPINECDS_LOG_LEVEL", "info").lower()


def on_starting(server: Any) -> None:
    """Start with no metric files: those of a previous run would be summed into this one's."""
    path = Path(METRICS_DIR)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # only prometheus-client's own files, whatever the folder is
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's in-flight gauge, so the sum covers live workers only."""
    multiprocess.mark_process_dead(worker.pid, METRICS_DIR)
