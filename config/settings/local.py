"""Development: the embedded default (SQLite, local media, eager tasks) unless the env says otherwise."""
from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
