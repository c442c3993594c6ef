"""Type aliases shared by the apps (for annotations only; nothing here runs at import time).

The project uses Django's own User model (no AUTH_USER_MODEL swap), so the services name it directly.
The imports stay under TYPE_CHECKING: these aliases are importable before the app registry is ready.
"""

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

# A signed-in account (what services that write on someone's behalf take).
UserType: TypeAlias = "User"
# request.user: signed in or not (what selectors that show per-viewer state take).
AnyUser: TypeAlias = "User | AnonymousUser"
