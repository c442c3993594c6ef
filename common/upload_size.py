"""The clip size rule (CLIP_MAX_BYTES) and the words that tell it, for every way a clip comes in: the
page's file field, the API's early refusal from Content-Length, the copy of an upload, the fetch of a link.

Here in common (which knows no app) so that safe_fetch can use it as well as characters.
"""

from __future__ import annotations

from django.conf import settings


def format_size(size_bytes: int) -> str:
    """A size as people read it: "200 MB", "49 KB", "512 bytes"."""
    if size_bytes >= 1_048_576:
        return f"{size_bytes / 1_048_576:.0f} MB"
    if size_bytes >= 1024:
        return f"{size_bytes / 1024:.0f} KB"
    return f"{size_bytes} bytes"


def clip_max_bytes() -> int:
    return int(settings.CLIP_MAX_BYTES)


def exceeds_clip_size(size_bytes: int) -> bool:
    """True when a clip of `size_bytes` is over the limit; a file of exactly the limit is taken."""
    return size_bytes > clip_max_bytes()


def clip_size_hint() -> str:
    """What the file picker says of the limit."""
    return f"up to {format_size(clip_max_bytes())}"


def too_large_message(what: str = "The file", *, limit: int | None = None) -> str:
    """The refusal of a file over `limit` bytes (default: the clip limit), `what` naming the file."""
    limit = clip_max_bytes() if limit is None else limit
    return f"{what} is larger than {format_size(limit)}, the limit for a clip. Trim or compress it and try again."
