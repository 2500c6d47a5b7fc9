"""Operators read docs/deployment.md: every setting the code reads is in its table, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from cds_hooks.auth_settings import AuthSettings
from cds_hooks.settings import Settings

TABLE = Path(__file__).resolve().parent.parent / "docs" / "deployment.md"
# Filled from SPINECDS_TRUSTED_CLIENTS_FILE, not set directly.
NOT_ENVIRONMENT = {"SPINECDS_TRUSTED_CLIENTS"}


def test_settings_table_matches_the_code():
    documented = set(re.findall(r"^\| `(SPINECDS_[A-Z_]+)` \|", TABLE.read_text(encoding="utf-8"), re.M))
    in_code = {f"SPINECDS_{name.upper()}" for model in (Settings, AuthSettings) for name in model.model_fields}
    in_code -= NOT_ENVIRONMENT
    assert sorted(in_code - documented) == [], "settings missing from docs/deployment.md"
    assert sorted(documented - in_code) == [], "docs/deployment.md documents settings the code does not read"


def test_rules_dir_and_log_format_are_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SPINECDS_RULES_DIR", str(tmp_path))
    monkeypatch.setenv("SPINECDS_LOG_FORMAT", "text")
    monkeypatch.setenv("SPINECDS_ALLOWED_ORIGINS", "https://ehr.example.org")
    settings = Settings()
    assert (settings.rules_dir, settings.log_format, settings.allowed_origins) == (
        tmp_path,
        "text",
        ["https://ehr.example.org"],
    )


def test_the_service_serves_the_rules_of_spinecds_rules_dir(tmp_path, monkeypatch):
    import shutil

    from fastapi.testclient import TestClient

    from cds_hooks.app import create_app
    from engine import api

    rules = tmp_path / "rules"
    shutil.copytree(api.RULES_DIR, rules)
    rule = rules / "sins-referral" / "rule.yaml"
    rule.write_text(rule.read_text().replace("version: 1.1.0", "version: 1.1.1", 1))
    monkeypatch.setattr(api, "_current", None)
    try:
        app = create_app(
            Settings(database_path=tmp_path / "db.sqlite3", rules_dir=rules),
            auth_settings=AuthSettings(auth_enabled=False),
        )
        with TestClient(app) as client:
            services = client.get("/cds-services").json()["services"]
            assert services[0]["extension"]["spinecds"]["rules"]["sins-referral"] == "1.1.1"
            assert client.get("/patient-sheets/alarm-symptoms").status_code == 200
    finally:
        api.use_rules_dir(None)
        monkeypatch.setattr(api, "_current", None)
