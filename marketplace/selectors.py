"""Reads for the marketplace: the gallery, wallets and their ledger, licenses and offers, and who may use a character.

`character_access` is the one rule for using a character (free for its creator and its story's
contributors, else a valid license); the license panel, the purchase refusal, the create page's
character list and the license check when a job is created all ask it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from characters.clips.selectors import story_contributors
from characters.models import Character, ReferenceImage, Story
from common.typing import AnyUser, UserType

from .models import CreditRequest, ExclusiveOffer, LedgerEntry, License, LicenseType, Wallet

GALLERY_SORTS = {
    # Each order ends on the primary key so pages never repeat or skip a character; each has a
    # matching partial index (migration 0002) over canonical, licensable characters.
    "popular": ("-total_votes", "-pk"),
    "recent": ("-created_at", "-pk"),
    "used": ("-clips_used", "-pk"),
}
DEFAULT_SORT = "popular"


def gallery_filter() -> Q:
    """Characters on sale in the gallery. The partial indexes repeat this condition."""
    return Q(status=Character.Status.CANONICAL, allow_licensing=True)


def active_exclusive(character_ref: Character | OuterRef) -> QuerySet[License]:
    return License.objects.filter(
        # An OuterRef in a subquery; the plugin checks lookups against rows and ids only.
        character=character_ref,
        license_type=LicenseType.EXCLUSIVE,
        status=License.Status.ACTIVE,  # type: ignore[misc]
    )


def _normalised(query: str) -> str:
    return " ".join((query or "").split())


def _gallery_matches(query: str = "") -> QuerySet[Character]:
    rows = Character.objects.filter(gallery_filter())
    query = _normalised(query)
    return rows.filter(name__icontains=query) if query else rows


def gallery_characters(*, sort: str = DEFAULT_SORT, query: str = "") -> QuerySet[Character]:
    """Canonical characters open to licensing, with everything a card shows, in one query.

    Rows carry `story` (title only), `cover_image` and `cover_kind` (storage name and kind of the cover,
    ReferenceImage.cover_order(); None without references) and `exclusive_taken`. For pages, use
    GalleryListing: it skips the lookups for rows before the page.
    """
    cover = ReferenceImage.objects.filter(character=OuterRef("pk")).order_by(*ReferenceImage.cover_order())
    return (
        _gallery_matches(query)
        .select_related("story")
        .only("character_id", "name", "story__title", "total_votes", "clips_used", "created_at", "creator_id")
        .annotate(
            cover_image=Subquery(cover.values("image")[:1]),
            cover_kind=Subquery(cover.values("kind")[:1]),
            exclusive_taken=Exists(active_exclusive(OuterRef("pk"))),
        )
        .order_by(*GALLERY_SORTS.get(sort, GALLERY_SORTS[DEFAULT_SORT]))
    )


@dataclass(frozen=True)
class GalleryPage:
    """One page of the gallery. Its rows are always current; only the total may lag behind them.

    `has_next` comes from fetching one row more than the page, never from the total, so a character
    opened to licensing after the total was counted is still on its page. `total_is_estimate` is true
    when the total is the cached count (shown as "about N"); the last page knows the exact total.
    """

    characters: list[Character]
    number: int
    limit: int
    has_next: bool
    total: int
    total_is_estimate: bool

    def __iter__(self) -> Iterator[Character]:
        return iter(self.characters)

    def __len__(self) -> int:
        return len(self.characters)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.total // self.limit))


class GalleryListing:
    """The gallery a page at a time, for pages and the API (`page()`).

    A page is one query: its keys come from an index-only scan of the sort's partial index, and only
    those rows are joined to their story, face close-up and exclusive flag, so a deep page does not
    look anything up for the rows it skips. The total is cached for GALLERY_TOTAL_CACHE_SECONDS
    (0: counted on every request), because counting every character on sale costs more than the page;
    it is only ever shown, never used to cut a page short.
    """

    def __init__(self, *, sort: str = DEFAULT_SORT, query: str = ""):
        self.sort = sort if sort in GALLERY_SORTS else DEFAULT_SORT
        self.query = _normalised(query)

    def _cache_key(self) -> str:
        digest = hashlib.sha256(self.query.lower().encode()).hexdigest()[:32]
        return f"marketplace:gallery-total:{digest}"

    def count(self, *, exact: bool = False) -> int:
        seconds = settings.GALLERY_TOTAL_CACHE_SECONDS
        if not seconds:
            return _gallery_matches(self.query).count()
        total: int | None = None if exact else cache.get(self._cache_key())
        if total is None:
            total = _gallery_matches(self.query).count()
            cache.set(self._cache_key(), total, seconds)
        return total

    def page_queryset(self, window: slice) -> QuerySet[Character]:
        keys = _gallery_matches(self.query).order_by(*GALLERY_SORTS[self.sort]).values("pk")[window]
        return gallery_characters(sort=self.sort).filter(pk__in=Subquery(keys))

    def page(self, number: int, limit: int, *, past_end_shows_last: bool = False) -> GalleryPage:
        """Page `number` (from 1) of `limit` rows; past the end it is empty, or the last page if asked."""
        number = max(1, number)
        offset = (number - 1) * limit
        rows = list(self.page_queryset(slice(offset, offset + limit + 1)))
        has_next = len(rows) > limit
        rows = rows[:limit]
        if not has_next and (rows or number == 1):
            # The last page knows the total exactly: show it, and refresh the cached one.
            total = offset + len(rows)
            if settings.GALLERY_TOTAL_CACHE_SECONDS:
                cache.set(self._cache_key(), total, settings.GALLERY_TOTAL_CACHE_SECONDS)
            return GalleryPage(rows, number, limit, False, total, False)
        if not rows:  # past the end: rare, so count exactly
            total = self.count(exact=True)
            last = max(1, -(-total // limit))
            if past_end_shows_last and last < number:
                return self.page(last, limit)
            return GalleryPage([], number, limit, False, total, False)
        cached = self.count()
        total = max(cached, offset + len(rows) + 1)  # there is at least one row after this page
        return GalleryPage(rows, number, limit, True, total, bool(settings.GALLERY_TOTAL_CACHE_SECONDS))


def wallet_balance(user: AnyUser) -> int:
    if not user.is_authenticated:
        return 0
    return Wallet.objects.filter(user=user).values_list("balance", flat=True).first() or 0


def wallet_ledger(user: UserType, *, limit: int | None = None) -> QuerySet[LedgerEntry]:
    entries = (
        LedgerEntry.objects.filter(wallet__user=user).select_related("license__character", "created_by").order_by("-pk")
    )
    return entries[:limit] if limit else entries


def ledger_sum(wallet: Wallet) -> int:
    return wallet.entries.aggregate(total=Sum("amount"))["total"] or 0


def valid_licenses(user: UserType, character: Character | OuterRef) -> QuerySet[License]:
    """The user's licenses of this character that can be used now, the one to spend first first.

    Spend the license that would be lost soonest: the earliest expiry first (never-expiring last),
    then counted uses before unlimited ones.
    """
    now = timezone.now()
    return (
        # An OuterRef in a subquery; the plugin checks lookups against rows and ids only.
        License.objects.filter(licensee=user, character=character, status=License.Status.ACTIVE)  # type: ignore[misc]
        .filter(Q(uses_remaining__isnull=True) | Q(uses_remaining__gt=0))
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by(F("expires_at").asc(nulls_last=True), F("uses_remaining").asc(nulls_last=True), "pk")
    )


def user_licenses(user: UserType) -> QuerySet[License]:
    return License.objects.filter(licensee=user).select_related("character__story").order_by("-created_at", "-pk")


@dataclass(frozen=True)
class CreatorSales:
    licenses_sold: int
    royalties_earned: int


def creator_sales(character: Character) -> CreatorSales:
    totals = License.objects.filter(character=character).aggregate(sold=Count("pk"), royalties=Sum("royalty_paid"))
    return CreatorSales(licenses_sold=totals["sold"], royalties_earned=totals["royalties"] or 0)


def exclusive_holder(character: Character) -> License | None:
    return active_exclusive(character).select_related("licensee", "story").first()


def pending_offers_for_character(character: Character) -> QuerySet[ExclusiveOffer]:
    return character.exclusive_offers.filter(status=ExclusiveOffer.Status.PENDING).select_related("buyer")


def offers_made(user: UserType) -> QuerySet[ExclusiveOffer]:
    return ExclusiveOffer.objects.filter(buyer=user).select_related("character__story", "license")


def offers_received(user: UserType) -> QuerySet[ExclusiveOffer]:
    """Offers on characters the user created."""
    return ExclusiveOffer.objects.filter(character__creator=user).select_related("character__story", "buyer")


# --- Who may use a character: the one access rule ------------------------------------------------


def free_access(user: AnyUser | None, character: Character) -> str | None:
    """Why `user` may use `character` without a license ("creator", "story_contributor"), or None."""
    if user is None or not user.is_authenticated:
        return None
    if user.pk == character.creator_id:
        return "creator"
    if story_contributors(character.story_id).filter(pk=user.pk).exists():
        return "story_contributor"
    return None


@dataclass(frozen=True)
class CharacterAccess:
    """May a user use a character, on what basis, and (with a license) how many uses are left."""

    character: Character
    allowed: bool
    reason: str  # "creator", "story_contributor", "license", "exclusive" (someone's exclusive stops it) or "none"
    message: str
    license: License | None = None  # the license a use is spent from first
    uses_left: int | None = None  # over all the user's valid licenses of it; None: unlimited (or not counted)

    @property
    def needs_license_use(self) -> bool:
        return self.reason == "license"

    @property
    def free(self) -> bool:
        return self.allowed and not self.needs_license_use

    @property
    def basis(self) -> str:
        """The basis in a few words, for a list of characters to pick from."""
        if self.reason == "creator":
            return "you created it"
        if self.reason == "story_contributor":
            return "you contribute to its story"
        if self.reason == "license":
            if self.uses_left is None:
                return "licensed, unlimited uses"
            return f"licensed, {self.uses_left} use{'' if self.uses_left == 1 else 's'} left"
        return "needs a license"


def free_access_message(reason: str) -> str:
    """What the license panel and a refused purchase say to someone who needs no license."""
    if reason == "creator":
        return "You can use this character without a license: you created it."
    return "You can use this character without a license: you contribute to its story."


def character_access(user: AnyUser | None, character: Character, story: Story | None = None) -> CharacterAccess:
    """May `user` use `character` in a clip (of `story`, when it is known)?

    The creator always may; so may anyone who contributed to the character's own story; everyone
    else needs a license with uses left that has not expired. Sales being closed (licensing off)
    does not stop licenses already bought.

    An exclusive license is "your story only" (the seed's tier): while it is active, the character is
    used only in its own story (by its creator and contributors, for free: the exclusive is sold to
    another story, it does not take the character from the story that made it) and in the holder's
    story (by the holder). Its creator's other stories lose it too; other licenses were stopped and
    refunded when it was granted (`services.exclusive_offer_accept`).
    """
    if user is None or not user.is_authenticated:
        return CharacterAccess(character, False, "none", "Sign in to use a character.")
    reason = free_access(user, character)
    exclusive = exclusive_holder(character)
    at_home = story is None or story.pk == character.story_id
    if reason is not None and (exclusive is None or at_home):
        return CharacterAccess(character, True, reason, free_access_message(reason))
    if exclusive is not None:
        if exclusive.licensee_id != user.pk:
            message = (
                f"{character.name} is licensed exclusively to another story: only that story and "
                f"“{character.story.title}”, its own, may use it."
            )
            return CharacterAccess(character, False, "exclusive", message)
        if story is not None and exclusive.story_id not in (None, story.pk):
            message = (
                f"Your exclusive license of {character.name} lets you use it only in "
                f"“{exclusive.story.title if exclusive.story else story.title}”."
            )
            return CharacterAccess(character, False, "exclusive", message, exclusive)
        return CharacterAccess(character, True, "license", "Your exclusive license.", exclusive, None)
    licenses = list(valid_licenses(user, character))
    if not licenses:
        message = f"Using {character.name} needs a license: buy one in the gallery."
        return CharacterAccess(character, False, "none", message)
    first = licenses[0]
    # None unlimited: every license counts its uses.
    uses_left = None if any(lic.unlimited for lic in licenses) else sum(lic.uses_remaining for lic in licenses)  # type: ignore[misc]
    return CharacterAccess(
        character, True, "license", f"Your {first.get_license_type_display().lower()} license.", first, uses_left
    )


def usable_characters(user: AnyUser | None, story: Story) -> list[CharacterAccess]:
    """The canonical characters `user` may use in a clip of `story`, each with its basis (`character_access`).

    The story's own characters first, newest first (so the first one is the one a request without a
    character gets), then characters of the user's other stories and licensed characters, by name.
    A character of the story the user may not use is left out, as are expired and used-up licenses.
    """
    if user is None or not user.is_authenticated:
        return []
    licensed = valid_licenses(user, OuterRef("pk"))
    candidates = (
        Character.objects.filter(status=Character.Status.CANONICAL)
        .filter(
            Q(story=story)
            | Q(creator=user)
            | Q(story__contributor_links__user=user)
            | Q(Exists(licensed.order_by().values("pk")))
        )
        .select_related("story")
        .distinct()
    )
    own = sorted((c for c in candidates if c.story_id == story.pk), key=lambda c: (c.created_at, c.pk), reverse=True)
    others = sorted((c for c in candidates if c.story_id != story.pk), key=lambda c: (c.name.lower(), c.pk))
    rows = [character_access(user, character, story) for character in own + others]
    return [row for row in rows if row.allowed]


def credit_requests_of(user: UserType) -> QuerySet[CreditRequest]:
    """A user's credit requests, newest first."""
    return CreditRequest.objects.filter(user=user).order_by("-created_at", "-pk")


def open_credit_request(user: UserType) -> CreditRequest | None:
    return CreditRequest.objects.filter(user=user, status=CreditRequest.Status.OPEN).first()
