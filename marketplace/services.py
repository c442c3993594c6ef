"""Writes for the marketplace: credits, license sales with royalties, exclusive offers, and license uses.

Every movement of credits happens in one transaction that holds row locks on the wallets it touches,
taken in primary-key order so two sales between the same two people can never deadlock. A refused
action raises a ServiceError before anything is written (and the transaction rolls back whatever
was), so no credit ever moves for a refusal.

Lock order, everywhere: character row -> offer row / credit request row -> license rows -> wallet rows (by pk).
Accepting an exclusive offer takes all of them in that order (it stops the character's other licenses and
refunds their wallets), so it and a purchase of the same character run one after the other.

The generation app calls two functions here: `license_consume_use` when it creates a job (it checks
access and spends the use in one pass, refusing with the reason), and `license_refund_use` when the
provider failed the job. The access rule itself is a read: `selectors.character_access` (and
`selectors.free_access` for who needs no license), which pages and the create page's character list use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from characters.clips.selectors import story_contributors
from characters.models import Character, Story
from common.exceptions import Conflict, NotFound, ServiceError
from common.typing import AnyUser, UserType

from . import selectors
from .models import CreditRequest, ExclusiveOffer, LedgerEntry, License, LicenseType, LicenseUse, Wallet
from .tiers import EXCLUSIVE, LicenseTier, get_tier

logger = logging.getLogger(__name__)


# --- Refusals ---------------------------------------------------------------------------------


class InsufficientCredits(ServiceError):
    status_code = 402
    code = "insufficient_credits"


class NotLicensable(ServiceError):
    status_code = 409
    code = "not_licensable"


class ExclusiveTaken(ServiceError):
    status_code = 409
    code = "exclusive_taken"


class LicenseRequired(ServiceError):
    status_code = 403
    code = "license_required"


class LicenseNotNeeded(ServiceError):
    """The buyer may already use the character for free (its creator, a contributor of its story)."""

    status_code = 409
    code = "license_not_needed"


def _forbidden(message: str) -> ServiceError:
    return ServiceError(message, code="forbidden", status_code=403)


def _require_signed_in(user: AnyUser | None) -> UserType:
    if user is None or not user.is_authenticated:
        raise ServiceError("Sign in first.", code="not_authenticated", status_code=401)
    return user


def _require_staff(user: AnyUser | None, what: str) -> UserType:
    if user is None or not user.is_staff:
        raise _forbidden(f"Only admins can {what}.")
    return user


# --- Wallets and the ledger -----------------------------------------------------------------


def _lock_wallets(*user_ids: int | None) -> dict[int, Wallet]:
    """Wallets of these users (created if missing), locked FOR UPDATE in pk order; keyed by user id."""
    user_ids = sorted({pk for pk in user_ids if pk is not None})  # type: ignore[assignment]  # the same ids, sorted
    for user_id in user_ids:
        Wallet.objects.get_or_create(user_id=user_id)
    wallets = Wallet.objects.select_for_update().filter(user_id__in=user_ids).order_by("pk")
    return {wallet.user_id: wallet for wallet in wallets}


def _post(
    wallet: Wallet,
    kind: str,
    amount: int,
    reason: str,
    *,
    license: License | None = None,
    by: UserType | None = None,
) -> LedgerEntry:
    """Move `amount` credits on a wallet the caller has locked, and record it. Never below zero."""
    new_balance = wallet.balance + amount
    if new_balance < 0:
        raise InsufficientCredits(
            f"Not enough credits: this needs {-amount} and the balance is {wallet.balance}.",
            details={"balance": wallet.balance, "required": -amount},
        )
    wallet.balance = new_balance
    wallet.save(update_fields=["balance", "updated_at"])
    return LedgerEntry.objects.create(
        wallet=wallet,
        kind=kind,
        amount=amount,
        balance_after=new_balance,
        reason=reason[:300],
        license=license,
        created_by=by,
    )


def wallet_get_or_create(user: AnyUser | None) -> Wallet:
    user = _require_signed_in(user)
    return Wallet.objects.get_or_create(user=user)[0]


def credits_grant(*, user: UserType, amount: int, reason: str, granted_by: AnyUser | None) -> LedgerEntry:
    """An admin gives a user credits, with the reason kept in the ledger."""
    return _admin_movement(user=user, amount=amount, reason=reason, by=granted_by, kind=LedgerEntry.Kind.GRANT)


def credits_adjust(*, user: UserType, amount: int, reason: str, adjusted_by: AnyUser | None) -> LedgerEntry:
    """An admin corrects a balance up or down (never below zero), with the reason kept in the ledger."""
    return _admin_movement(user=user, amount=amount, reason=reason, by=adjusted_by, kind=LedgerEntry.Kind.ADJUSTMENT)


def _admin_movement(*, user: UserType, amount: int, reason: str, by: AnyUser | None, kind: str) -> LedgerEntry:
    by = _require_staff(by, "grant or adjust credits")
    reason = " ".join((reason or "").split())
    if not reason:
        raise ServiceError("Give a reason: it is kept in the ledger.", code="reason_required")
    limit = settings.CREDIT_GRANT_MAX
    if kind == LedgerEntry.Kind.GRANT and not 0 < amount <= limit:
        raise ServiceError(f"A grant must be between 1 and {limit} credits.", code="invalid_amount")
    if kind == LedgerEntry.Kind.ADJUSTMENT and (amount == 0 or abs(amount) > limit):
        raise ServiceError(f"An adjustment must be between -{limit} and {limit} credits, not 0.", code="invalid_amount")
    with transaction.atomic():
        wallet = _lock_wallets(user.pk)[user.pk]
        entry = _post(wallet, kind, amount, reason, by=by)
    logger.info("%s %+d credits to %s by %s: %s", kind, amount, user, by, reason)
    return entry


SIGNUP_GRANT_REASON = "Welcome credits for a new account"


def credits_signup_grant(*, user: UserType) -> LedgerEntry | None:
    """Give a new account CREDITS_SIGNUP_GRANT credits (none when 0), once: a second call grants nothing."""
    amount = settings.CREDITS_SIGNUP_GRANT
    if amount <= 0:
        return None
    with transaction.atomic():
        wallet = _lock_wallets(user.pk)[user.pk]
        if wallet.entries.filter(kind=LedgerEntry.Kind.GRANT, reason=SIGNUP_GRANT_REASON).exists():
            return None
        entry = _post(wallet, LedgerEntry.Kind.GRANT, amount, SIGNUP_GRANT_REASON)
    logger.info("Sign-up grant of %s credits to %s", amount, user)
    return entry


# --- Credit requests ------------------------------------------------------------------------


def credit_request_create(*, user: AnyUser | None, amount: int, reason: str) -> CreditRequest:
    """A contributor asks the admins for credits: one open request at a time, CREDIT_REQUESTS_PER_DAY a day."""
    user = _require_signed_in(user)
    reason = " ".join((reason or "").split())
    if not reason:
        raise ServiceError("Say what the credits are for: the admins decide on it.", code="reason_required")
    limit = settings.CREDIT_GRANT_MAX
    if not 0 < amount <= limit:
        raise ServiceError(f"Ask for between 1 and {limit} credits.", code="invalid_amount")
    if CreditRequest.objects.filter(user=user, status=CreditRequest.Status.OPEN).exists():
        raise Conflict("You already have an open request: wait for the admins' answer.", code="request_open")
    per_day = settings.CREDIT_REQUESTS_PER_DAY
    since = timezone.now() - timedelta(days=1)
    if CreditRequest.objects.filter(user=user, created_at__gte=since).count() >= per_day:
        raise ServiceError(
            f"You can send {per_day} credit request{'s' if per_day != 1 else ''} a day; try again tomorrow.",
            code="throttled",
            status_code=429,
        )
    try:
        with transaction.atomic():
            credit_request = CreditRequest.objects.create(user=user, amount=amount, reason=reason[:500])
    except IntegrityError:  # another request of this user was created at the same moment
        raise Conflict("You already have an open request: wait for the admins' answer.", code="request_open") from None
    logger.info("Credit request %s: %s credits for %s", credit_request.pk, amount, user)
    return credit_request


def _lock_open_request(request_id: int) -> CreditRequest:
    credit_request = CreditRequest.objects.select_for_update().select_related("user").filter(pk=request_id).first()
    if credit_request is None:
        raise NotFound("No such credit request.")
    if credit_request.status != CreditRequest.Status.OPEN:
        state = credit_request.get_status_display().lower()
        raise Conflict(f"This request is already {state}.", code="request_decided")
    return credit_request


def credit_request_grant(*, request_id: int, granted_by: AnyUser | None) -> CreditRequest:
    """Grant an open request through the ledger (credits_grant, the reason kept); a second grant is refused."""
    granted_by = _require_staff(granted_by, "grant credit requests")
    with transaction.atomic():
        credit_request = _lock_open_request(request_id)
        entry = credits_grant(
            user=credit_request.user,
            amount=credit_request.amount,
            granted_by=granted_by,
            reason=f"Credit request #{credit_request.pk}: {credit_request.reason}",
        )
        credit_request.status = CreditRequest.Status.GRANTED
        credit_request.ledger_entry = entry
        credit_request.decided_by = granted_by
        credit_request.decided_at = timezone.now()
        credit_request.save(update_fields=["status", "ledger_entry", "decided_by", "decided_at"])
    return credit_request


def credit_request_decline(
    *,
    request_id: int,
    decided_by: AnyUser | None,
    status: str,
    note: str = "",
) -> CreditRequest:
    """Reject (the answer is no) or close (settled otherwise) an open request; no credits move."""
    decided_by = _require_staff(decided_by, "decide credit requests")
    if status not in (CreditRequest.Status.REJECTED, CreditRequest.Status.CLOSED):
        raise ServiceError("A request is rejected or closed.", code="invalid_status")
    with transaction.atomic():
        credit_request = _lock_open_request(request_id)
        credit_request.status = status
        credit_request.decided_by = decided_by
        credit_request.decided_at = timezone.now()
        credit_request.decision_note = " ".join((note or "").split())[:300]
        credit_request.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    logger.info("Credit request %s %s by %s", request_id, status, decided_by)
    return credit_request


# --- Selling licenses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Purchase:
    license: License
    created: bool  # False: an earlier purchase with the same idempotency key, returned again


def _lock_character(character: Character) -> Character:
    # NO KEY: other transactions may still insert rows that reference the character.
    return Character.objects.select_for_update(no_key=True).get(pk=character.pk)


def _check_on_sale(character: Character, buyer: UserType) -> None:
    """Refuse, with the reason, when this buyer cannot license this character now (purchases hold its lock)."""
    if character.status != Character.Status.CANONICAL:
        raise NotLicensable(f"{character.name} is not canonical yet, so it cannot be licensed.")
    if not character.allow_licensing:
        raise NotLicensable(f"The creator of {character.name} does not allow licensing at the moment.")
    free = selectors.free_access(buyer, character)
    if free is not None:
        raise LicenseNotNeeded(selectors.free_access_message(free), details={"reason": free})
    holder = selectors.exclusive_holder(character)
    if holder is not None:
        if holder.licensee_id == buyer.pk:
            raise ServiceError(
                f"You hold the exclusive license of {character.name}: it has unlimited uses.", code="already_exclusive"
            )
        raise ExclusiveTaken(f"{character.name} is licensed exclusively to someone else: no new licenses are sold.")


def _sell(
    *,
    character: Character,
    buyer: UserType,
    tier: LicenseTier,
    credits: int,
    idempotency_key: str = "",
) -> License:
    """Charge the buyer, pay the creator's royalty and record the license. Caller holds the character lock."""
    wallets = _lock_wallets(buyer.pk, character.creator_id)
    buyer_wallet = wallets[buyer.pk]
    if buyer_wallet.balance < credits:
        raise InsufficientCredits(
            f"Not enough credits: the {tier.label.lower()} license of {character.name} costs {credits} and your "
            f"balance is {buyer_wallet.balance}.",
            details={"balance": buyer_wallet.balance, "required": credits},
        )
    creator_wallet = wallets.get(character.creator_id)  # type: ignore[arg-type]  # no creator: no wallet
    royalty = tier.royalty_on(credits) if creator_wallet is not None else 0
    now = timezone.now()
    license = License.objects.create(
        character=character,
        licensee=buyer,
        license_type=tier.key,
        credits_paid=credits,
        royalty_percent=tier.royalty_percent,
        royalty_paid=royalty,
        platform_fee=credits - royalty,
        uses_granted=tier.uses,
        uses_remaining=tier.uses,
        expires_at=tier.expires_at(now),
        idempotency_key=idempotency_key,
    )
    _post(
        buyer_wallet,
        LedgerEntry.Kind.PURCHASE,
        -credits,
        f"{tier.label} license of {character.name}",
        license=license,
        by=buyer,
    )
    if royalty:
        _post(
            creator_wallet,  # type: ignore[arg-type]  # a royalty: a wallet
            LedgerEntry.Kind.ROYALTY,
            royalty,
            f"Royalty ({tier.royalty_percent} %) on a license of {character.name} ({tier.label.lower()})",
            license=license,
            by=buyer,
        )
    logger.info(
        "Sold %s license %s of %s to %s for %s (royalty %s)",
        tier.key,
        license.pk,
        character.character_id,
        buyer,
        credits,
        royalty,
    )
    return license


def _replayed_purchase(buyer: UserType, character: Character, tier_key: str, key: str) -> Purchase | None:
    if not key:
        return None
    earlier = License.objects.filter(licensee=buyer, idempotency_key=key).first()
    if earlier is None:
        return None
    if earlier.character_id != character.pk or earlier.license_type != tier_key:
        raise Conflict("This idempotency key was already used for a different purchase.", code="idempotency_key_reused")
    return Purchase(license=earlier, created=False)


def license_purchase(
    *,
    buyer: AnyUser | None,
    character: Character,
    license_type: str,
    idempotency_key: str = "",
) -> Purchase:
    """Buy a priced license tier. With an idempotency key, retrying the same request never buys twice."""
    buyer = _require_signed_in(buyer)
    tier = get_tier(license_type)
    if tier is None or license_type not in LicenseType.values:
        choices = ", ".join(t for t in settings.LICENSE_TIERS if t != EXCLUSIVE)
        raise ServiceError(
            f"Unknown license type '{license_type}'. Choose one of: {choices}.", code="unknown_license_type"
        )
    if tier.negotiated:
        raise ServiceError(
            "Exclusive licenses are negotiated: make an offer to the creator instead.", code="exclusive_by_offer"
        )
    key = (idempotency_key or "").strip()
    if len(key) > 64:
        raise ServiceError("An idempotency key may be at most 64 characters.", code="invalid_idempotency_key")
    replay = _replayed_purchase(buyer, character, tier.key, key)
    if replay:
        return replay
    try:
        with transaction.atomic():
            character = _lock_character(character)
            _check_on_sale(character, buyer)
            # A priced tier (not negotiated): its cost is set.
            license = _sell(character=character, buyer=buyer, tier=tier, credits=tier.cost, idempotency_key=key)  # type: ignore[arg-type]
    except IntegrityError:
        # The same key raced in from a concurrent retry: that purchase won, this one rolled back.
        replay = _replayed_purchase(buyer, character, tier.key, key)
        if replay:
            return replay
        raise
    return Purchase(license=license, created=True)


def license_revoke(*, license_id: int, revoked_by: AnyUser | None, reason: str, refund: bool = False) -> License:
    """An admin ends a license (an exclusive one reopens sales); with `refund`, the buyer gets the price back.

    The refund comes out of the platform's share: the creator keeps the royalty already paid.
    """
    revoked_by = _require_staff(revoked_by, "revoke licenses")
    reason = " ".join((reason or "").split()) or "Revoked by an admin."
    with transaction.atomic():
        license = License.objects.select_for_update().filter(pk=license_id).first()
        if license is None:
            raise NotFound(f"There is no license {license_id}.")
        if license.status == License.Status.REVOKED:
            raise Conflict(f"License {license_id} is already revoked.", code="already_revoked")
        license.status = License.Status.REVOKED
        license.revoked_at = timezone.now()
        license.revoked_reason = reason[:300]
        if refund and license.credits_paid:
            wallet = _lock_wallets(license.licensee_id)[license.licensee_id]
            _post(
                wallet,
                LedgerEntry.Kind.REFUND,
                license.credits_paid,
                f"Refund of license {license.pk}: {reason}",
                license=license,
                by=revoked_by,
            )
            license.refunded_credits = license.credits_paid
        license.save(update_fields=["status", "revoked_at", "revoked_reason", "refunded_credits"])
    logger.info("License %s revoked by %s (refund=%s): %s", license_id, revoked_by, refund, reason)
    return license


# --- Exclusive offers -------------------------------------------------------------------------


def _require_own_story(buyer: UserType, story: Story, character: Character) -> None:
    """The story an exclusive license is for must be one the buyer created or contributes to, not the character's."""
    if story.pk == character.story_id:
        raise ServiceError(
            f"“{story.title}” is {character.name}'s own story: it needs no license.", code="not_your_story"
        )
    own = story.created_by_id == buyer.pk or story_contributors(story).filter(pk=buyer.pk).exists()
    if not own:
        raise ServiceError(
            f"An exclusive license is for one of your stories, and you have not contributed to “{story.title}”.",
            code="not_your_story",
        )


def exclusive_offer_make(
    *, buyer: AnyUser | None, character: Character, credits: int, message: str = "", story: Story | None = None
) -> ExclusiveOffer:
    """Offer credits for the exclusive license of `character` for `story`, one of the buyer's stories ("your story
    only"; None: the first story the license is used in). Nothing is charged until the creator accepts."""
    buyer = _require_signed_in(buyer)
    minimum = settings.LICENSE_EXCLUSIVE_MIN_OFFER
    if credits is None or credits < minimum:
        raise ServiceError(
            f"An exclusive offer starts at {minimum} credits.", code="offer_too_low", details={"minimum": minimum}
        )
    _check_on_sale(character, buyer)
    if story is not None:
        _require_own_story(buyer, story, character)
    balance = selectors.wallet_balance(buyer)
    if balance < credits:
        raise InsufficientCredits(
            f"Your balance ({balance} credits) does not cover an offer of {credits}: it is charged on acceptance.",
            details={"balance": balance, "required": credits},
        )
    try:
        with transaction.atomic():
            offer = ExclusiveOffer.objects.create(
                character=character,
                buyer=buyer,
                credits=credits,
                story=story,
                message=" ".join((message or "").split())[:500],
            )
    except IntegrityError:
        raise Conflict(
            f"You already have a pending offer for {character.name}: withdraw it to make a new one.",
            code="offer_pending",
        ) from None
    logger.info("Exclusive offer %s: %s offers %s for %s", offer.pk, buyer, credits, character.character_id)
    return offer


def _lock_offer(offer_id: int) -> tuple[ExclusiveOffer, Character]:
    """Lock the offer's character, then the offer (the lock order every offer action follows)."""
    character_pk = ExclusiveOffer.objects.filter(pk=offer_id).values_list("character_id", flat=True).first()
    if character_pk is None:
        raise NotFound(f"There is no exclusive offer {offer_id}.")
    character = Character.objects.select_for_update(no_key=True).get(pk=character_pk)
    offer = ExclusiveOffer.objects.select_for_update(of=("self",)).select_related("buyer").get(pk=offer_id)
    if offer.status != ExclusiveOffer.Status.PENDING:
        raise Conflict(f"This offer is already {offer.get_status_display().lower()}.", code="offer_not_pending")
    return offer, character


def _require_decider(user: AnyUser | None, character: Character) -> UserType:
    if user is None or not (user.is_staff or (user.is_authenticated and user.pk == character.creator_id)):
        raise _forbidden("Only the character's creator or an admin can accept or decline offers.")
    return user


def exclusive_refund(license: License, when: datetime) -> int:
    """Credits given back for a license an exclusive one stops: what it had left, pro rata, rounded down.

    Counted uses (single use, pack of 10): the unused uses' share of the price. Unlimited: the whole
    days left of its term. Nothing for a license already used up or expired. The platform pays it: the
    creator keeps the royalty of the first sale (and earns the exclusive's).
    """
    if not license.is_valid_at(when):
        return 0
    if license.uses_granted:
        refund = license.credits_paid * (license.uses_remaining or 0) // license.uses_granted
    elif license.expires_at is None:
        refund = license.credits_paid
    else:
        tier = get_tier(license.license_type)
        term_days = tier.days if tier and tier.days else max(1, (license.expires_at - license.created_at).days)
        days_left = min(term_days, max(0, (license.expires_at - when).days))
        refund = license.credits_paid * days_left // term_days
    return max(0, min(refund, license.credits_paid - license.refunded_credits))


def _stop_for_exclusive(
    license: License, wallet: Wallet, exclusive: License, when: datetime, by: UserType | None
) -> None:
    """Revoke a license the new exclusive one replaces and refund what it had left (caller holds both locks)."""
    refund = exclusive_refund(license, when)
    license.status, license.revoked_at = License.Status.REVOKED, when
    license.revoked_reason = f"Stopped by the exclusive license {exclusive.pk} of {exclusive.character.name}."
    if refund:
        _post(
            wallet,
            LedgerEntry.Kind.REFUND,
            refund,
            f"Refund of license {license.pk} (what was left): {exclusive.character.name} was licensed exclusively",
            license=license,
            by=by,
        )
        license.refunded_credits += refund
    license.save(update_fields=["status", "revoked_at", "revoked_reason", "refunded_credits"])


def exclusive_offer_accept(*, offer_id: int, decided_by: AnyUser | None) -> ExclusiveOffer:
    """Accept: charge the offer, pay the 50 % royalty, grant the exclusive license, close the other offers,
    and stop every other license of the character that could still be used, refunding what it had left
    (`exclusive_refund`). The character's lock serialises this with purchases, so no license is sold beside it."""
    tier = cast(LicenseTier, get_tier(EXCLUSIVE))  # a tier of the settings, always there
    with transaction.atomic():
        offer, character = _lock_offer(offer_id)
        decided_by = _require_decider(decided_by, character)
        if character.status != Character.Status.CANONICAL or not character.allow_licensing:
            raise NotLicensable(f"{character.name} is not open to licensing: turn licensing on to accept an offer.")
        if selectors.exclusive_holder(character) is not None:
            raise ExclusiveTaken(f"{character.name} already has an exclusive license.")
        now = timezone.now()
        # Lock order: character -> offer -> license rows -> wallet rows (all of them at once, by pk).
        others = [
            license
            for license in License.objects.select_for_update()
            .filter(character=character, status=License.Status.ACTIVE)
            .order_by("pk")
            if license.is_valid_at(now)
        ]
        _lock_wallets(offer.buyer_id, character.creator_id, *(lic.licensee_id for lic in others))
        license = _sell(character=character, buyer=offer.buyer, tier=tier, credits=offer.credits)
        if offer.story_id:
            license.story_id = offer.story_id
            license.save(update_fields=["story"])
        wallets = _lock_wallets(*(lic.licensee_id for lic in others))  # already held; read again after the sale
        for other in others:
            _stop_for_exclusive(other, wallets[other.licensee_id], license, now, decided_by)
        offer.status, offer.license, offer.decided_by, offer.decided_at = (
            ExclusiveOffer.Status.ACCEPTED,
            license,
            decided_by,
            now,
        )
        offer.save(update_fields=["status", "license", "decided_by", "decided_at"])
        ExclusiveOffer.objects.filter(character=character, status=ExclusiveOffer.Status.PENDING).update(
            status=ExclusiveOffer.Status.CLOSED, decided_at=now, decision_note=f"Offer {offer.pk} was accepted."
        )
    logger.info(
        "Exclusive offer %s accepted by %s: license %s, %s other licenses stopped",
        offer.pk,
        decided_by,
        license.pk,
        len(others),
    )
    return offer


def exclusive_offer_decline(*, offer_id: int, decided_by: AnyUser | None, note: str = "") -> ExclusiveOffer:
    with transaction.atomic():
        offer, character = _lock_offer(offer_id)
        decided_by = _require_decider(decided_by, character)
        offer.status, offer.decided_by, offer.decided_at = ExclusiveOffer.Status.DECLINED, decided_by, timezone.now()
        offer.decision_note = " ".join((note or "").split())[:300]
        offer.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    logger.info("Exclusive offer %s declined by %s", offer.pk, decided_by)
    return offer


def exclusive_offer_withdraw(*, offer_id: int, buyer: AnyUser | None) -> ExclusiveOffer:
    with transaction.atomic():
        offer, _ = _lock_offer(offer_id)
        if buyer is None or offer.buyer_id != buyer.pk:
            raise _forbidden("Only the buyer who made an offer can withdraw it.")
        offer.status, offer.decided_at = ExclusiveOffer.Status.WITHDRAWN, timezone.now()
        offer.save(update_fields=["status", "decided_at"])
    return offer


# --- Using a character: the one access rule, and license uses ------------------------------------

# The access rule is a read (marketplace.selectors.character_access); its result's old name is kept.
LicenseAccess = selectors.CharacterAccess


def license_check_access(user: AnyUser | None, character: Character, story: Story | None = None) -> LicenseAccess:
    """May `user` use `character` (in `story`, when generating a clip)? See `selectors.character_access`."""
    return selectors.character_access(user, character, story)


def license_consume_use(user: AnyUser, character: Character, story: Story | None, job_ref: str) -> LicenseUse | None:
    """Check that `user` may use `character` and spend one use of their license for the job `job_ref`: one call.

    Returns None when no license is needed (creator, story contributor). Calling it again for the
    same job returns the same use: a job never spends two. Raises LicenseRequired (403, with the
    reason and what to do) without access, before anything is written.
    """
    job_ref = str(job_ref or "").strip()
    if not job_ref or len(job_ref) > 100:
        raise ServiceError("A job reference of 1-100 characters is required.", code="invalid_job_ref")
    access = license_check_access(user, character, story)
    if access.allowed and not access.needs_license_use:
        return None
    # A job that already spent its use gets it back, even if that use was the license's last one.
    earlier = _use_of_job(job_ref, user, character)
    if earlier is not None:
        return earlier
    if not access.allowed:
        raise LicenseRequired(access.message)
    if access.license is not None and access.license.license_type == EXCLUSIVE:
        return _use_exclusive(access.license, character, story, job_ref)
    try:
        with transaction.atomic():
            # Locked rows are re-checked by the database after the lock, so a license another job
            # just used up drops out of this list instead of going below zero.
            # Allowed and needing a use: a signed-in account.
            for license in selectors.valid_licenses(cast(UserType, user), character).select_for_update():
                if license.uses_remaining is not None:
                    spent = License.objects.filter(pk=license.pk, uses_remaining__gt=0).update(
                        uses_remaining=F("uses_remaining") - 1
                    )
                    if not spent:
                        continue
                return LicenseUse.objects.create(license=license, job_ref=job_ref, story=story)
    except IntegrityError:
        # The same job raced in: its use won and this decrement rolled back.
        earlier = _use_of_job(job_ref, user, character)
        if earlier is not None:
            return earlier
        raise
    raise LicenseRequired(f"Your licenses of {character.name} have no uses left: buy another one in the gallery.")


def _use_exclusive(license: License, character: Character, story: Story | None, job_ref: str) -> LicenseUse:
    """Record a use of an exclusive license; the first use in a story binds a license offered without one."""
    try:
        with transaction.atomic():
            locked = License.objects.select_for_update().filter(pk=license.pk, status=License.Status.ACTIVE).first()
            if locked is None:
                raise LicenseRequired(f"Your exclusive license of {character.name} has ended.")
            if story is not None and locked.story_id is None:
                locked.story = story
                locked.save(update_fields=["story"])
            elif story is not None and locked.story_id != story.pk:
                raise LicenseRequired(f"Your exclusive license of {character.name} is for another of your stories.")
            return LicenseUse.objects.create(license=locked, job_ref=job_ref, story=story)
    except IntegrityError:
        earlier = LicenseUse.objects.filter(job_ref=job_ref, license=license).first()
        if earlier is not None:
            return earlier
        raise


def _use_of_job(job_ref: str, user: AnyUser, character: Character) -> LicenseUse | None:
    use = LicenseUse.objects.select_related("license").filter(job_ref=job_ref).first()
    if use is None:
        return None
    if use.license.licensee_id != user.pk or use.license.character_id != character.pk:
        raise Conflict(f"Job {job_ref} already used a license of another user or character.", code="job_ref_taken")
    if use.refunded_at is not None:
        raise Conflict(
            f"Job {job_ref}'s use was given back; a retried job needs a new reference.", code="job_ref_refunded"
        )
    return use


def license_refund_use(job_ref: str) -> LicenseUse | None:
    """Give back the use a job spent when the provider failed it. Only once; None if the job spent none."""
    with transaction.atomic():
        use = LicenseUse.objects.select_for_update().filter(job_ref=str(job_ref or "").strip()).first()
        if use is None or use.refunded_at is not None:
            return use
        use.refunded_at = timezone.now()
        use.save(update_fields=["refunded_at"])
        License.objects.filter(pk=use.license_id, uses_remaining__isnull=False).update(
            uses_remaining=F("uses_remaining") + 1
        )
    logger.info("Use of license %s by job %s given back", use.license_id, job_ref)
    return use
