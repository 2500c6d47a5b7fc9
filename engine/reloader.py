"""Hot reload of the rules: a polling watcher (portable, no inotify dependency) and a SIGHUP hook.

Either way the work is `engine.api.reload`: build from disk, run every case, swap only if all pass.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from engine import api

log = logging.getLogger("spinecds.engine")


def snapshot(rules_dir: Path) -> dict[str, tuple[float, int]]:
    """Modification time and size of every file a rule author can edit."""
    return {
        str(path): (path.stat().st_mtime, path.stat().st_size)
        for path in sorted(rules_dir.rglob("*"))
        if path.is_file() and path.suffix in (".yaml", ".yml", ".json", ".md")
    }


class RulesWatcher:
    """Checks the rules folder every `interval` seconds and reloads after a change."""

    def __init__(
        self, rules_dir: Path, interval: float = 2.0, on_reload: Callable[[api.ReloadReport], None] | None = None
    ):
        self.rules_dir, self.interval, self.on_reload = rules_dir, interval, on_reload
        self._stop = threading.Event()
        self._seen = snapshot(rules_dir)
        self._thread = threading.Thread(target=self._loop, name="spinecds-rules-watcher", daemon=True)

    def start(self) -> RulesWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)

    def check_now(self) -> api.ReloadReport | None:
        current = snapshot(self.rules_dir)
        if current == self._seen:
            return None
        self._seen = current
        report = api.reload(self.rules_dir)
        if self.on_reload:
            self.on_reload(report)
        return report

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check_now()
            except Exception:
                log.exception("rules watcher failed; will retry")


def install_sighup_reload(on_reload: Callable[[api.ReloadReport], None] | None = None) -> bool:
    """`kill -HUP <pid>` reloads the rules. Only possible from the main thread."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        return False

    def handler(signum: int, frame: object) -> None:
        report = api.reload()
        if on_reload:
            on_reload(report)

    signal.signal(signal.SIGHUP, handler)
    return True
