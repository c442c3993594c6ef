"""Django's admin finds an app's registrations in `<app>.admin`: this app keeps them in its rooms."""

from characters.clips import admin as clips_admin  # noqa: F401 - stories, clips, candidate frames
from characters.dna import admin as dna_admin  # noqa: F401 - Character DNA
from characters.groups import admin as groups_admin  # noqa: F401 - marks
from characters.pins import admin as pins_admin  # noqa: F401 - pinned characters, settings
