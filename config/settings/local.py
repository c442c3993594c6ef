"""Development: the embedded default (SQLite, local media, tasks in background threads) unless the env says
otherwise."""
from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
