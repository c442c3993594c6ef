"""Credits (a wallet per user over an append-only ledger), character licenses, their uses, and exclusive offers.

Money invariants, enforced by the database where it can: a wallet's balance is never negative and
always equals the sum of its ledger; a sale splits exactly into royalty + platform fee; a job's
license use is recorded once (unique job_ref); a character has at most one active exclusive license.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from characters.models import Character, Story


class Wallet(models.Model):
    """A user's credits. Created on demand; only marketplace.services changes `balance`, with the row locked."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallet")
    balance = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_balance_not_negative")]

    def __str__(self) -> str:
        return f"{self.user} · {self.balance} credits"


class AppendOnlyError(Exception):
    pass


class LedgerEntry(models.Model):
    """One movement of credits. Never updated or deleted: corrections are new entries."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        PURCHASE = "purchase", "Purchase"
        ROYALTY = "royalty", "Royalty"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = models.IntegerField(help_text="Credits in (+) or out (-).")
    balance_after = models.IntegerField()
    reason = models.CharField(max_length=300)
    license = models.ForeignKey(
        "License", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["wallet", "-id"], name="ledger_wallet_newest")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="ledger_balance_after_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount:+d} → {self.balance_after}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Ledger entries are append-only; add a correcting entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Ledger entries are append-only; add a correcting entry instead.")


class LicenseType(models.TextChoices):
    SINGLE_USE = "single_use", "Single use"
    PACK_10 = "pack_10", "Pack of 10"
    UNLIMITED = "unlimited", "Unlimited"
    EXCLUSIVE = "exclusive", "Exclusive"


class License(models.Model):
    """The right of `licensee` to use `character` in generation: `uses_remaining` uses until `expires_at`."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"

    character = models.ForeignKey(Character, on_delete=models.PROTECT, related_name="licenses")
    licensee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="character_licenses")
    license_type = models.CharField(max_length=12, choices=LicenseType.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    credits_paid = models.PositiveIntegerField()
    royalty_percent = models.PositiveSmallIntegerField(help_text="The tier's rate at the time of the sale.")
    royalty_paid = models.PositiveIntegerField(help_text="Credits paid to the creator.")
    platform_fee = models.PositiveIntegerField(help_text="Credits the platform kept.")
    refunded_credits = models.PositiveIntegerField(default=0)
    uses_granted = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    uses_remaining = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    # An exclusive license is for one story of its holder ("your story only"): the one named in the offer,
    # or else the first story the holder uses the character in.
    story = models.ForeignKey(
        Story,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Exclusive licenses: the only story (besides the character's own) whose clips may use it.",
    )
    # A client's key for retrying a purchase safely: the same key never buys twice.
    idempotency_key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["licensee", "character", "status"], name="license_holder_character")]
        constraints = [
            models.CheckConstraint(
                condition=Q(credits_paid=F("royalty_paid") + F("platform_fee")), name="license_sale_split_adds_up"
            ),
            models.CheckConstraint(
                condition=Q(uses_remaining__isnull=True) | Q(uses_remaining__lte=F("uses_granted")),
                name="license_uses_remaining_within_granted",
            ),
            models.UniqueConstraint(
                fields=["character"],
                condition=Q(license_type="exclusive", status="active"),
                name="one_active_exclusive_per_character",
            ),
            models.UniqueConstraint(
                fields=["licensee", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="license_idempotency_key_per_licensee",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_license_type_display()} of {self.character.character_id} for {self.licensee}"

    @property
    def unlimited(self) -> bool:
        return self.uses_remaining is None

    def is_valid_at(self, when) -> bool:
        return (
            self.status == self.Status.ACTIVE
            and (self.uses_remaining is None or self.uses_remaining > 0)
            and (self.expires_at is None or self.expires_at > when)
        )

    def state_at(self, when) -> str:
        """What a person should read: active, used up, expired or revoked."""
        if self.status == self.Status.REVOKED:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= when:
            return "expired"
        if self.uses_remaining == 0:
            return "used up"
        return "active"


class LicenseUse(models.Model):
    """One use of a license by one generation job; `job_ref` is unique, so a job never uses two."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="uses")
    job_ref = models.CharField(max_length=100, unique=True)
    story = models.ForeignKey(Story, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.job_ref} on license {self.license_id}"


class ExclusiveOffer(models.Model):
    """A buyer's offer for the exclusive license; the creator or an admin accepts (charging it) or declines."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        WITHDRAWN = "withdrawn", "Withdrawn"
        CLOSED = "closed", "Closed (another offer was accepted)"

    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="exclusive_offers")
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exclusive_offers")
    credits = models.PositiveIntegerField()
    message = models.CharField(max_length=500, blank=True)
    story = models.ForeignKey(
        Story,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The buyer's story the exclusive license is for (empty: the first story it is used in).",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True)
    license = models.OneToOneField(
        License, null=True, blank=True, on_delete=models.PROTECT, related_name="exclusive_offer"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["character", "buyer"], condition=Q(status="pending"), name="one_pending_offer_per_buyer"
            ),
            models.CheckConstraint(condition=Q(credits__gt=0), name="offer_credits_positive"),
        ]

    def __str__(self) -> str:
        return f"Offer {self.pk}: {self.credits} credits for {self.character.character_id} by {self.buyer}"


class CreditRequest(models.Model):
    """A contributor asks the admins for credits, saying why; an admin grants it (one ledger entry), rejects or
    closes it. One open request per user at a time (a database constraint)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        GRANTED = "granted", "Granted"
        REJECTED = "rejected", "Rejected"
        CLOSED = "closed", "Closed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credit_requests")
    amount = models.PositiveIntegerField(help_text="Credits asked for.")
    reason = models.CharField(max_length=500, help_text="What the contributor wants the credits for.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True)
    ledger_entry = models.OneToOneField(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credit_request",
        help_text="The grant, once granted.",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(status="open"), name="one_open_credit_request_per_user"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_request_amount_positive"),
            models.CheckConstraint(
                condition=Q(status="granted", ledger_entry__isnull=False)
                | (~Q(status="granted") & Q(ledger_entry__isnull=True)),
                name="credit_request_granted_has_entry",
            ),
        ]

    def __str__(self) -> str:
        return f"Credit request {self.pk}: {self.amount} for {self.user} ({self.get_status_display()})"
