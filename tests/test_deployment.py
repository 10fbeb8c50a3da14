"""No Docker engine runs here: check the deployment files' structure instead."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_web_worker_and_beat_from_one_image():
    services = load_compose()["services"]
    images = {services[name]["image"] for name in ("web", "worker", "beat")}
    assert len(images) == 1
    assert "gunicorn" in services["web"]["command"]
    assert "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]


def test_compose_waits_for_healthy_database_and_redis():
    services = load_compose()["services"]
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert "ping" in services["redis"]["healthcheck"]["test"]
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_compose_migrates_on_start_before_web_worker_and_beat():
    services = load_compose()["services"]
    migrate = services["migrate"]
    assert migrate["command"][-3:] == ["manage.py", "migrate", "--no-input"]
    assert migrate["image"] == services["web"]["image"]
    assert migrate["restart"] == "no"
    for name in ("web", "worker", "beat"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"


def test_image_runs_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")


def test_env_example_lists_every_setting_the_code_reads():
    settings_source = (ROOT / "revenge_site" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings_source))
    read |= set(re.findall(r'choice\(\s*"([A-Z_]+)"', settings_source))
    listed = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert read - {"ENV_FILE"} <= listed, f"missing from .env.example: {read - listed}"


def test_compose_web_healthcheck_probes_health_with_a_start_period():
    web = load_compose()["services"]["web"]
    check = web["healthcheck"]
    assert check["test"] == ["CMD", "python", "scripts/healthcheck.py"]
    assert "/health/" in (ROOT / "scripts" / "healthcheck.py").read_text()
    # Beat's first tick comes one dispatch interval (5 min by default) after it starts.
    assert parse_duration(check["start_period"]) > 5 * 60
    assert parse_duration(check["timeout"]) < parse_duration(check["interval"])


def test_compose_publishes_gunicorn_on_loopback_only():
    # A TLS-terminating proxy on the host is the way in; X-Forwarded-Proto is trusted from it.
    assert load_compose()["services"]["web"]["ports"] == ["127.0.0.1:8000:8000"]


def test_image_collects_static_files_at_build_and_keeps_env_out():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "collectstatic --no-input" in dockerfile
    assert re.search(r"useradd [^\n]*--uid (\d+)", dockerfile)[1] != "0"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", "var"} <= set(ignored)


def parse_duration(value: str) -> int:
    match = re.fullmatch(r"(\d+)([sm])", value)
    assert match, value
    return int(match[1]) * (60 if match[2] == "m" else 1)


# --- production settings ----------------------------------------------------------------------


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A clean environment whose only settings are .env.example's, plus real secrets."""
    values = {
        **env_example(),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "KITSU_TOKEN_KEY": Fernet.generate_key().decode(),
        **overrides,
    }
    env_file = tmp_path / "production.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ENV_FILE": str(env_file)}


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


SECURITY_SETTINGS = (
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "USE_X_FORWARDED_HOST",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "X_FRAME_OPTIONS",
)


def settings_of(env: dict[str, str], names: tuple[str, ...]) -> dict[str, object]:
    """These settings as a fresh process started with `env` sees them."""
    script = (
        "import json\nfrom django.conf import settings\n"
        f"print(json.dumps({{name: getattr(settings, name) for name in {names!r}}}))"
    )
    result = manage(env, "shell", "--no-imports", "-c", script)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def security_settings(env: dict[str, str]) -> dict[str, object]:
    return settings_of(env, SECURITY_SETTINGS)


def test_check_deploy_is_clean_with_the_env_example_settings(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_check_deploy_flags_the_placeholder_secret_key(tmp_path):
    env = production_env(tmp_path, SECRET_KEY=env_example()["SECRET_KEY"])

    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def test_check_deploy_flags_a_plain_http_kitsu(tmp_path):
    env = production_env(tmp_path, KITSU_OAUTH_URL="http://kitsu.example/api/oauth")

    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert "kitsu_sync.W001" in result.stderr
    assert "KITSU_OAUTH_URL is plain HTTP" in result.stderr
    assert "KITSU_API_URL" not in result.stderr


def test_the_env_example_turns_on_https_cookies_hsts_and_the_proxy_header(tmp_path):
    assert security_settings(production_env(tmp_path)) == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "USE_X_FORWARDED_HOST": False,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY",
    }


def test_without_debug_the_defaults_are_secure_and_the_proxy_header_is_opt_in(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ENV_FILE": str(tmp_path / "none.env"),
        "SECRET_KEY": secrets.token_urlsafe(50),
    }
    found = security_settings(env)

    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SESSION_COOKIE_SECURE"] is True
    assert found["CSRF_COOKIE_SECURE"] is True
    assert found["SECURE_HSTS_SECONDS"] == 31_536_000
    assert found["SECURE_PROXY_SSL_HEADER"] is None


def test_each_security_setting_can_be_changed_from_the_environment(tmp_path):
    env = production_env(
        tmp_path,
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
        SECURE_HSTS_PRELOAD="false",
        TRUST_X_FORWARDED_PROTO="false",
        USE_X_FORWARDED_HOST="true",
        X_FRAME_OPTIONS="SAMEORIGIN",
    )
    found = security_settings(env)

    assert found["SECURE_SSL_REDIRECT"] is False
    assert found["SESSION_COOKIE_SECURE"] is False
    assert found["CSRF_COOKIE_SECURE"] is False
    assert found["SECURE_HSTS_SECONDS"] == 3600
    assert found["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert found["SECURE_HSTS_PRELOAD"] is False
    assert found["SECURE_PROXY_SSL_HEADER"] is None
    assert found["USE_X_FORWARDED_HOST"] is True
    assert found["X_FRAME_OPTIONS"] == "SAMEORIGIN"


def test_debug_relaxes_the_https_defaults_for_local_work(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ENV_FILE": str(tmp_path / "none.env"),
        "DEBUG": "true",
    }
    found = security_settings(env)

    assert found["SECURE_SSL_REDIRECT"] is False
    assert found["SESSION_COOKIE_SECURE"] is False
    assert found["SECURE_HSTS_SECONDS"] == 0


# --- the container's health probe -------------------------------------------------------------


def load_probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "scripts/healthcheck.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("allowed_hosts", "host"),
    [
        ("revenge.example.org,other.example.org", "revenge.example.org"),
        (".example.org", "example.org"),
        ("*", "localhost"),
        ("", "localhost"),
    ],
)
def test_the_probe_sends_a_host_django_allows(allowed_hosts, host):
    assert load_probe().probe_host(allowed_hosts) == host


def run_probe(url: str, allowed_hosts: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/healthcheck.py"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HEALTH_URL": url, "ALLOWED_HOSTS": allowed_hosts},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_the_probe_passes_on_200_and_fails_on_503(live_server, settings):
    from kitsu_sync import health
    from kitsu_sync.models import Heartbeat

    settings.ALLOWED_HOSTS = ["revenge.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    url = f"{live_server.url}/health/"
    health.record_beat_tick()

    healthy = run_probe(url, "revenge.example.org")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.startswith('HTTP 200: {"status": "ok"')

    Heartbeat.objects.all().delete()
    unhealthy = run_probe(url, "revenge.example.org")
    assert unhealthy.returncode == 1
    assert unhealthy.stdout.startswith('HTTP 503: {"status": "unhealthy"')


def test_the_probe_fails_when_nothing_answers(refused_url):
    result = run_probe(f"{refused_url}/health/", "")
    assert result.returncode == 1
    assert "did not answer" in result.stderr


# --- static files -----------------------------------------------------------------------------


def test_gunicorns_app_serves_collected_static_files(tmp_path, settings):
    pytest.importorskip("whitenoise", reason="requirements.txt is not installed in this venv")
    from django.core.management import call_command
    from werkzeug.test import Client

    settings.STATIC_ROOT = str(tmp_path)
    call_command("collectstatic", "--no-input", verbosity=0)
    wsgi = importlib.reload(importlib.import_module("revenge_site.wsgi"))

    response = Client(wsgi.application).get("/static/admin/css/base.css")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/css")


# --- performance settings ---------------------------------------------------------------------


def test_database_connections_are_reused_for_a_minute_unless_configured(tmp_path):
    default = settings_of(production_env(tmp_path), ("DATABASES",))["DATABASES"]["default"]
    assert (default["CONN_MAX_AGE"], default["CONN_HEALTH_CHECKS"]) == (60, True)

    env = production_env(tmp_path, DATABASE_CONN_MAX_AGE="0")
    assert settings_of(env, ("DATABASES",))["DATABASES"]["default"]["CONN_MAX_AGE"] == 0


def test_the_broker_visibility_timeout_comes_from_the_environment(tmp_path):
    env = production_env(tmp_path, CELERY_VISIBILITY_TIMEOUT="7200")
    options = settings_of(env, ("CELERY_BROKER_TRANSPORT_OPTIONS",))
    assert options["CELERY_BROKER_TRANSPORT_OPTIONS"] == {"visibility_timeout": 7200}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CELERY_VISIBILITY_TIMEOUT", "600", "at least 3600 seconds"),
        ("KITSU_PAGES_IN_FLIGHT", "0", "between 1 and 8"),
        ("KITSU_PAGES_IN_FLIGHT", "20", "between 1 and 8"),
        ("DATABASE_CONN_MAX_AGE", "-1", "0 or more"),
        ("KITSU_RATE_LIMIT_KEY", " ", "must not be empty"),
    ],
)
def test_a_performance_setting_out_of_range_stops_start_up_with_a_reason(
    tmp_path, name, value, message
):
    result = manage(production_env(tmp_path, **{name: value}), "check")
    assert result.returncode != 0
    assert name in result.stderr
    assert message in result.stderr
