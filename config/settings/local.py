"""Development: the embedded default (SQLite, local media, tasks in background threads) unless the env says
otherwise."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)

# The demo hands newcomers enough credits to license a character right away.
CREDITS_SIGNUP_GRANT = env.int("CREDITS_SIGNUP_GRANT", default=100)
