"""Keeps the Dockerfile, gunicorn config and Kubernetes manifests honest without running Docker.

Docker is not available where the tests run, so these tests check what a build or a rollout would
trip over first: COPY sources that do not exist, a CMD pointing at a missing module, a pip extra
that pyproject does not define, probes on the wrong paths or ports, settings nobody documented.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import runpy
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "deploy" / "kubernetes.yaml"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    return result


def of(keyword: str) -> list[str]:
    return [arguments for name, arguments in instructions() if name == keyword]


def runtime_stage() -> list[tuple[str, str]]:
    """Instructions of the last stage: the image that actually runs."""
    items = instructions()
    last_from = max(i for i, (name, _) in enumerate(items) if name == "FROM")
    return items[last_from:]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def manifests() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(K8S.read_text(encoding="utf-8")) if doc]


def deployment() -> dict[str, Any]:
    (found,) = [doc for doc in manifests() if doc["kind"] == "Deployment"]
    return found


def container() -> dict[str, Any]:
    (found,) = deployment()["spec"]["template"]["spec"]["containers"]
    return found


def cmd_text() -> str:
    (cmd,) = of("CMD")
    return " ".join(yaml.safe_load(cmd)) if cmd.startswith("[") else cmd  # exec form is a JSON array


def exposed_port() -> int:
    (port,) = of("EXPOSE")
    return int(port.split("/")[0])


def copied_sources() -> list[str]:
    """Build-context paths of every COPY (not those copied from another stage)."""
    sources = []
    for arguments in of("COPY"):
        words = shlex.split(arguments)
        if any(word.startswith("--from") for word in words):
            continue
        sources += [word for word in words[:-1] if not word.startswith("--")]
    return sources


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# --- Dockerfile -------------------------------------------------------------------------------


def test_every_copy_source_exists_in_the_repo() -> None:
    missing = [source for source in copied_sources() if not (ROOT / source).exists()]
    assert copied_sources(), "the Dockerfile copies nothing"
    assert missing == [], f"Dockerfile COPYs paths that are not in the repo: {missing}"


def test_no_copy_source_is_excluded_from_the_build_context() -> None:
    excluded = [
        (source, pattern)
        for source in copied_sources()
        for pattern in dockerignore_patterns()
        if not pattern.startswith("!") and fnmatch.fnmatch(source.rstrip("/"), pattern.rstrip("/"))
    ]
    assert excluded == []


def test_the_build_copies_every_package_and_the_readme_that_pyproject_needs() -> None:
    project = pyproject()
    copied = {source.rstrip("/") for source in copied_sources()}
    assert "pyproject.toml" in copied
    assert project["project"]["readme"] in copied
    includes = project["tool"]["setuptools"]["packages"]["find"]["include"]
    top_level = {pattern.split(".")[0].rstrip("*") for pattern in includes}
    # The demo kit (synthetic patients, try-it page) is packaged for development installs but left
    # out of the production image; setuptools' find simply finds nothing there.
    service = top_level - {"sandbox"}
    assert service <= copied, f"packaged but not copied into the build: {sorted(service - copied)}"
    assert "sandbox" not in copied, "the production image must not ship the sandbox kit"


def test_cmd_serves_the_app_module_that_exists() -> None:
    match = re.search(r"gunicorn\s+([\w.]+):(\w+)", cmd_text())
    assert match, cmd_text()
    module, attribute = match.groups()
    assert (module, attribute) == ("cds_hooks.app", "app")
    # What gunicorn does: import the module and take the attribute, an ASGI application.
    app = getattr(importlib.import_module(module), attribute)
    assert callable(app) and hasattr(app, "router"), f"{module}:{attribute} is not an ASGI app"


def test_cmd_runs_uvicorn_workers_under_gunicorn_from_the_deploy_extra() -> None:
    text = cmd_text()
    # The service's worker class (uvicorn's, with proxy-header trust and the access log under our settings).
    assert "-k cds_hooks.gunicorn_worker.SpinecdsWorker" in text
    assert (ROOT / "cds_hooks" / "gunicorn_worker.py").is_file()
    assert "--workers ${WEB_CONCURRENCY:-2}" in text
    assert text.startswith("sh -c exec gunicorn"), "gunicorn must be PID 1 to receive SIGTERM"
    assert any(dep.startswith("gunicorn") for dep in pyproject()["project"]["optional-dependencies"]["deploy"])
    assert importlib.util.find_spec("uvicorn.workers") is not None


def test_every_pip_extra_named_in_the_dockerfile_exists() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    named = set(re.findall(r"spinecds\[([\w,-]+)\]", text))
    named |= set(re.findall(r"\['optional-dependencies'\]\['([\w-]+)'\]", text))
    extras = {extra for group in named for extra in group.split(",")}
    assert extras, "the Dockerfile installs no extra; expected at least `deploy`"
    assert extras <= set(pyproject()["project"]["optional-dependencies"])


def test_runtime_stage_is_non_root_without_compilers_and_checks_health() -> None:
    stage = runtime_stage()
    users = [arguments for name, arguments in stage if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert not any("build-essential" in arguments for _, arguments in stage)
    (healthcheck,) = [arguments for name, arguments in stage if name == "HEALTHCHECK"]
    assert f"http://127.0.0.1:{exposed_port()}/health" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck  # neither exists in slim images
    assert "--no-index" in " ".join(arguments for name, arguments in stage if name == "RUN")


def test_build_stage_compiles_on_python_311_slim_with_build_essential() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert re.search(r"apt-get install[^\n]*build-essential", text)


def test_cmd_binds_the_exposed_port() -> None:
    assert f"--bind 0.0.0.0:{exposed_port()}" in cmd_text()


def test_the_wheel_ships_every_rule_file() -> None:
    """engine.vocabulary.RULES_DIR is ../rules next to engine/: the wheel must carry all of rules/."""
    patterns = pyproject()["tool"]["setuptools"]["package-data"]["rules"]
    rules_dir = ROOT / "rules"
    shipped = {path for pattern in patterns for path in rules_dir.glob(pattern)}
    on_disk = {path for path in rules_dir.rglob("*") if path.is_file() and "__pycache__" not in path.parts}
    assert sorted(map(str, on_disk - shipped)) == []
    assert "rules" in pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]


# --- Kubernetes -------------------------------------------------------------------------------


def test_manifests_parse_and_hold_the_expected_objects() -> None:
    kinds = sorted(doc["kind"] for doc in manifests())
    assert {"ConfigMap", "Deployment", "Service"} <= set(kinds)


def test_probes_point_at_health_and_ready_on_the_container_port() -> None:
    probes = container()
    ports = {port["name"]: port["containerPort"] for port in probes["ports"]}
    assert list(ports.values()) == [exposed_port()]
    assert probes["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health"
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        port = probes[kind]["httpGet"]["port"]
        assert ports.get(port, port) == exposed_port(), kind


def test_service_targets_the_container_port() -> None:
    (service,) = [doc for doc in manifests() if doc["kind"] == "Service"]
    names = {port["name"] for port in container()["ports"]}
    assert all(port["targetPort"] in names | {exposed_port()} for port in service["spec"]["ports"])
    assert service["spec"]["selector"] == deployment()["spec"]["selector"]["matchLabels"]


def test_pod_runs_as_the_images_non_root_user_on_a_read_only_root() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    assert deployment()["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    image_user = [arguments for name, arguments in runtime_stage() if name == "USER"][-1].split(":")[0]
    assert str(pod["securityContext"]["runAsUser"]) == image_user
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert container()["resources"]["requests"] and container()["resources"]["limits"]


def test_every_path_the_service_writes_is_a_mounted_volume() -> None:
    """Read-only root FS: /tmp, the metrics folder and the SQLite folder must be volumes."""
    mounts = [mount["mountPath"] for mount in container()["volumeMounts"]]
    volumes = {volume["name"]: volume for volume in deployment()["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[next(m["name"] for m in container()["volumeMounts"] if m["mountPath"] == "/tmp")]
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(of("ENV"))))
    for writable in (env["PROMETHEUS_MULTIPROC_DIR"], str(Path(env["SPINECDS_DATABASE_PATH"]).parent)):
        assert any(writable == mount or writable.startswith(mount.rstrip("/") + "/") for mount in mounts), writable


def test_database_url_comes_from_a_secret_not_the_configmap() -> None:
    (config,) = [doc for doc in manifests() if doc["kind"] == "ConfigMap"]
    assert "SPINECDS_DATABASE_URL" not in config["data"]
    env = {item["name"]: item for item in container().get("env", [])}
    assert "secretKeyRef" in env["SPINECDS_DATABASE_URL"]["valueFrom"]


def test_pseudonym_key_comes_from_a_secret_that_ships_no_value() -> None:
    # With authentication on the service refuses to start without it; a value written in this file
    # would be as public as the development key.
    (config,) = [doc for doc in manifests() if doc["kind"] == "ConfigMap"]
    assert "SPINECDS_PSEUDONYM_KEY" not in config["data"]
    assert str(config["data"].get("SPINECDS_AUTH_ENABLED", "true")).lower() == "true"
    env = {item["name"]: item for item in container().get("env", [])}
    reference = env["SPINECDS_PSEUDONYM_KEY"]["valueFrom"]["secretKeyRef"]
    shipped = [doc for doc in manifests() if doc["kind"] == "Secret" and doc["metadata"]["name"] == reference["name"]]
    assert shipped == []


def test_pods_get_longer_to_stop_than_gunicorn_takes_to_drain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the config sets it if absent
    config = runpy.run_path(str(GUNICORN_CONF))
    grace = deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert config["graceful_timeout"] < grace
    assert config["worker_class"] == "cds_hooks.gunicorn_worker.SpinecdsWorker"
    assert config["accesslog"] is None  # the service writes its own access line, without query strings


def test_gunicorn_clears_stale_metric_files_but_nothing_else(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "counter_123.db").write_bytes(b"")
    (tmp_path / "keep.txt").write_text("not ours")
    runpy.run_path(str(GUNICORN_CONF))["on_starting"](None)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.txt"]


# --- documentation ----------------------------------------------------------------------------


def test_every_setting_the_artifacts_use_is_in_the_settings_table() -> None:
    documented = set(re.findall(r"^\|\s*`(SPINECDS_\w+)`", DEPLOYMENT_DOC.read_text(encoding="utf-8"), re.M))
    (config,) = [doc for doc in manifests() if doc["kind"] == "ConfigMap"]
    used = {key for key in config["data"] if key.startswith("SPINECDS_")}
    used |= {item["name"] for item in container().get("env", []) if item["name"].startswith("SPINECDS_")}
    used |= set(re.findall(r"\b(SPINECDS_\w+)=", " ".join(of("ENV"))))
    assert sorted(used - documented) == []
