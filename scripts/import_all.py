"""Import every module of the project's apps under the embedded-default settings.

Run with the interpreter of a virtualenv built from requirements.txt alone: a module that
imports a package only the dev requirements bring in fails here, as it would in `make run` on a
fresh machine. Test support lives in tests/ (not an app here), so it is not imported: it may need dev packages.
The settings are the embedded default's (`config.settings.local`), as in `make run`.

    .venv/bin/python scripts/import_all.py
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("config", "common", "characters", "voting", "generation", "marketplace", "demo")


def project_modules() -> list[str]:
    names: list[str] = []
    for app in APPS:
        names.append(app)
        for info in pkgutil.walk_packages([str(ROOT / app)], prefix=f"{app}."):
            # Settings modules are loaded by django.setup() (only the active one can be: production's
            # refuses to load without its secrets).
            if info.name.startswith("config.settings."):
                continue
            names.append(info.name)
    return names


def main() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    # Importing config.wsgi would start the embedded background pool (and its start-up sweep): not wanted here.
    os.environ["TASKS_IN_BACKGROUND_THREADS"] = "False"
    import django

    django.setup()
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - resolving the URLconf imports every view module
    failures = 0
    modules = project_modules()
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            failures += 1
            print(f"FAILED to import {name}:", file=sys.stderr)
            traceback.print_exc()
    print(f"imported {len(modules) - failures} of {len(modules)} modules")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
