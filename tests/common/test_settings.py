"""Settings as each environment boots them: every check runs in a fresh process with only the
environment variables the test gives (plus PATH), as a new machine or a deployment would."""

import json
import os
import re
import secrets
import subprocess
import sys

import pytest

from tests.support.paths import PROJECT_DIR

SUMMARY = """
import json, django
django.setup()
from django.conf import settings
from django.core.files.storage import storages
from config.celery import app
print(json.dumps({
    "debug": settings.DEBUG,
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "cache": settings.CACHES["default"]["BACKEND"],
    "eager": app.conf.task_always_eager,
    "background": settings.TASKS_IN_BACKGROUND_THREADS,
    "visibility_timeout": app.conf.broker_transport_options.get("visibility_timeout"),
    "time_limit": app.conf.task_time_limit,
    "sqlite_options": settings.DATABASES["default"].get("OPTIONS", {}),
    "broker": app.conf.broker_url,
    "storage": type(storages["default"]).__name__,
    "media_root": str(settings.MEDIA_ROOT),
}))
"""


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        cwd=PROJECT_DIR,
        env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def summary(env: dict[str, str]) -> dict:
    result = run([sys.executable, "-c", SUMMARY], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def no_dotenv():
    if (PROJECT_DIR / ".env").exists():
        pytest.skip("a .env file in the project feeds the settings; these checks need an empty environment")


def production_env(**extra) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "characters.example.org",
        **extra,
    }


def test_production_passes_the_deploy_checks_without_a_warning(no_dotenv):
    # drf-spectacular adds a deploy check that generates the API schema: its warnings count too.
    result = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNING" not in output and "?:" not in output, output


def test_production_refuses_to_boot_without_its_secrets(no_dotenv):
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    result = run([sys.executable, "manage.py", "check"], env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_local_settings_boot_with_no_environment_on_the_embedded_default(no_dotenv):
    result = run([sys.executable, "manage.py", "check"], {})
    assert result.returncode == 0, result.stdout + result.stderr

    local = summary({"DJANGO_SETTINGS_MODULE": "config.settings.local"})
    assert local["debug"] is True
    assert local["engine"] == "django.db.backends.sqlite3"
    assert local["db_name"] == str(PROJECT_DIR / "db.sqlite3")
    assert local["cache"].endswith("LocMemCache")
    # Tasks run in background threads of the server process, not inside the request.
    assert local["eager"] is False and local["background"] is True
    assert local["sqlite_options"]["timeout"] >= 5 and "WAL" in local["sqlite_options"]["init_command"]
    assert local["storage"] == "FileSystemStorage"
    assert local["media_root"] == str(PROJECT_DIR / "media")


def test_each_service_switch_selects_the_real_backend(no_dotenv):
    real = summary(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": "postgres://cps:secret@db.internal:5432/cps",
            "REDIS_URL": "redis://cache.internal:6379/0",
            "S3_BUCKET": "cps-media",
        }
    )
    assert real["engine"] == "django.db.backends.postgresql"
    assert real["db_name"] == "cps"
    assert real["cache"].endswith("RedisCache")
    assert real["eager"] is False and real["background"] is False
    # A message whose worker died comes back just after the longest a task may run, not after an hour.
    assert real["time_limit"] < real["visibility_timeout"] <= real["time_limit"] + 120
    assert real["broker"] == "redis://cache.internal:6379/0"
    assert real["storage"] == "S3Storage"


def test_every_environment_variable_is_in_the_readme_table():
    read = set()
    for module in (PROJECT_DIR / "config" / "settings").glob("*.py"):
        read |= set(re.findall(r'\benv(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]*)"', module.read_text()))
    assert "DATABASE_URL" in read  # the pattern finds them
    readme = (PROJECT_DIR / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `"))
    missing = sorted(name for name in read if f"`{name}`" not in table)
    assert not missing, f"add these to the README's environment variable table: {missing}"
