"""Admin for the marketplace: wallets with their (read-only) ledger, granting credits with a reason,
licenses (revoke, with or without refund), exclusive offers (accept / decline) and credit requests (grant in one
click, reject, close).

Every admin action goes through marketplace.services and is written to the admin log.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from common.exceptions import ServiceError

from . import services
from .forms import GrantCreditsForm
from .models import CreditRequest, ExclusiveOffer, LedgerEntry, License, LicenseUse, Wallet


class ReadOnlyAdminMixin:
    """Rows written only by services: the admin shows them and never edits them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LedgerEntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = LedgerEntry
    fields = ("created_at", "kind", "amount", "balance_after", "reason", "license", "created_by")
    readonly_fields = fields
    ordering = ("-pk",)
    extra = 0
    show_change_link = True


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ("user", "balance", "updated_at")
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    readonly_fields = ("user", "balance", "created_at", "updated_at")
    inlines = [LedgerEntryInline]
    change_list_template = "admin/marketplace/wallet/change_list.html"
    change_form_template = "admin/marketplace/wallet/change_form.html"

    def has_add_permission(self, request):
        return False  # wallets are created on demand; credits arrive through "Grant credits"

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        grant = path("grant/", self.admin_site.admin_view(self.grant_view), name="marketplace_wallet_grant")
        return [grant, *super().get_urls()]

    def grant_view(self, request):
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = GrantCreditsForm(request.POST or None, initial={"username": request.GET.get("username", "")})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            move = services.credits_grant if data["kind"] == LedgerEntry.Kind.GRANT else services.credits_adjust
            by = {"granted_by" if move is services.credits_grant else "adjusted_by": request.user}
            try:
                entry = move(user=form.user, amount=data["amount"], reason=data["reason"], **by)
            except ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                self.log_change(
                    request, entry.wallet, f"{entry.get_kind_display()} {entry.amount:+d} credits: {entry.reason}"
                )
                who = form.user.get_username()
                self.message_user(
                    request, f"{entry.amount:+d} credits for {who}; balance {entry.balance_after}.", messages.SUCCESS
                )
                return redirect(reverse("admin:marketplace_wallet_change", args=[entry.wallet_id]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": "Grant credits",
        }
        return render(request, "admin/marketplace/wallet/grant.html", context)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "wallet", "kind", "amount", "balance_after", "reason", "license", "created_by")
    list_filter = ("kind",)
    search_fields = ("wallet__user__username", "reason")
    list_select_related = ("wallet__user", "license__character", "license__licensee", "created_by")
    date_hierarchy = "created_at"


class LicenseUseInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = LicenseUse
    fields = ("job_ref", "story", "created_at", "refunded_at")
    readonly_fields = fields
    extra = 0


@admin.register(License)
class LicenseAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "character",
        "licensee",
        "license_type",
        "status",
        "uses",
        "expires_at",
        "credits_paid",
        "royalty_paid",
        "platform_fee",
        "created_at",
    )
    list_filter = ("license_type", "status")
    search_fields = ("character__name", "character__character_id", "licensee__username")
    list_select_related = ("character", "licensee")
    readonly_fields = [f.name for f in License._meta.fields]
    inlines = [LicenseUseInline]
    actions = ["revoke", "revoke_and_refund"]

    def has_add_permission(self, request):
        return False  # licenses are sold, never typed in

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Uses left")
    def uses(self, license):
        if license.uses_remaining is None:
            return "unlimited"
        return f"{license.uses_remaining} / {license.uses_granted}"

    def _revoke(self, request, queryset, refund: bool):
        for license in queryset:
            try:
                services.license_revoke(
                    license_id=license.pk,
                    revoked_by=request.user,
                    refund=refund,
                    reason=f"Revoked in the admin by {request.user.get_username()}.",
                )
            except ServiceError as exc:
                self.message_user(request, f"License {license.pk}: {exc.message}", messages.ERROR)
                continue
            verb = "revoked and refunded" if refund else "revoked"
            self.log_change(request, license, verb)
            self.message_user(request, f"License {license.pk} {verb}.", messages.SUCCESS)

    @admin.action(description="Revoke selected licenses (no refund)", permissions=["change"])
    def revoke(self, request, queryset):
        self._revoke(request, queryset, refund=False)

    @admin.action(description="Revoke selected licenses and refund the buyer", permissions=["change"])
    def revoke_and_refund(self, request, queryset):
        self._revoke(request, queryset, refund=True)


@admin.register(ExclusiveOffer)
class ExclusiveOfferAdmin(admin.ModelAdmin):
    list_display = ("id", "character", "buyer", "credits", "status", "created_at", "decided_by", "license_link")
    list_filter = ("status",)
    search_fields = ("character__name", "character__character_id", "buyer__username")
    list_select_related = ("character", "buyer", "decided_by", "license")
    readonly_fields = [f.name for f in ExclusiveOffer._meta.fields]
    actions = ["accept", "decline"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="License")
    def license_link(self, offer):
        if not offer.license_id:
            return "-"
        url = reverse("admin:marketplace_license_change", args=[offer.license_id])
        return format_html('<a href="{}">#{}</a>', url, offer.license_id)

    def _decide(self, request, queryset, decide, verb: str):
        for offer in queryset:
            try:
                decide(offer)
            except ServiceError as exc:
                self.message_user(request, f"Offer {offer.pk}: {exc.message}", messages.ERROR)
                continue
            self.log_change(request, offer, verb)
            self.message_user(request, f"Offer {offer.pk} {verb}.", messages.SUCCESS)

    @admin.action(description="Accept selected offers (charges the buyer)", permissions=["change"])
    def accept(self, request, queryset):
        self._decide(
            request,
            queryset,
            lambda o: services.exclusive_offer_accept(offer_id=o.pk, decided_by=request.user),
            "accepted",
        )

    @admin.action(description="Decline selected offers", permissions=["change"])
    def decline(self, request, queryset):
        self._decide(
            request,
            queryset,
            lambda o: services.exclusive_offer_decline(
                offer_id=o.pk, decided_by=request.user, note="Declined by an admin."
            ),
            "declined",
        )


CREDIT_REQUEST_DECISIONS = {
    "grant": (lambda request, pk: services.credit_request_grant(request_id=pk, granted_by=request.user), "granted"),
    "reject": (
        lambda request, pk: services.credit_request_decline(
            request_id=pk,
            decided_by=request.user,
            status=CreditRequest.Status.REJECTED,
            note=request.POST.get("note", ""),
        ),
        "rejected",
    ),
    "close": (
        lambda request, pk: services.credit_request_decline(
            request_id=pk,
            decided_by=request.user,
            status=CreditRequest.Status.CLOSED,
            note=request.POST.get("note", ""),
        ),
        "closed",
    ),
}


@admin.register(CreditRequest)
class CreditRequestAdmin(admin.ModelAdmin):
    """Contributors' requests for credits. Grant (one click: a ledger grant with the request's reason), reject or
    close, from the list (actions) or the change page (buttons); a request already answered is left as it is."""

    list_display = ("id", "user", "amount", "reason", "status", "created_at", "decided_by", "ledger_link")
    list_filter = ("status",)
    search_fields = ("user__username", "user__email", "reason")
    list_select_related = ("user", "decided_by")
    readonly_fields = [f.name for f in CreditRequest._meta.fields]
    actions = ["grant", "reject", "close"]
    change_form_template = "admin/marketplace/creditrequest/change_form.html"

    def has_add_permission(self, request):
        return False  # contributors file them from their wallet

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Ledger entry")
    def ledger_link(self, credit_request):
        if not credit_request.ledger_entry_id:
            return "-"
        url = reverse("admin:marketplace_ledgerentry_change", args=[credit_request.ledger_entry_id])
        return format_html('<a href="{}">#{}</a>', url, credit_request.ledger_entry_id)

    def get_urls(self):
        decide = path(
            "<int:pk>/decide/<str:decision>/",
            self.admin_site.admin_view(self.decide_view),
            name="marketplace_creditrequest_decide",
        )
        return [decide, *super().get_urls()]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Nothing on a request is edited by hand: the buttons above the form are the only changes.
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "decisions": CREDIT_REQUEST_DECISIONS,
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _decide(self, request, credit_request, decision: str) -> bool:
        run, verb = CREDIT_REQUEST_DECISIONS[decision]
        try:
            run(request, credit_request.pk)
        except ServiceError as exc:
            self.message_user(request, f"Request {credit_request.pk}: {exc.message}", messages.ERROR)
            return False
        self.log_change(request, credit_request, verb)
        self.message_user(
            request,
            f"Request {credit_request.pk} {verb}: {credit_request.amount} credits for {credit_request.user}.",
            messages.SUCCESS,
        )
        return True

    def decide_view(self, request, pk, decision):
        if decision not in CREDIT_REQUEST_DECISIONS:
            raise PermissionDenied
        return require_POST(self._decide_post)(request, pk, decision)

    def _decide_post(self, request, pk, decision):
        if not self.has_change_permission(request):
            raise PermissionDenied
        credit_request = get_object_or_404(CreditRequest.objects.select_related("user"), pk=pk)
        self._decide(request, credit_request, decision)
        return redirect(reverse("admin:marketplace_creditrequest_change", args=[pk]))

    def _decide_all(self, request, queryset, decision):
        for credit_request in queryset.select_related("user"):
            self._decide(request, credit_request, decision)

    @admin.action(description="Grant selected requests (credits through the ledger)", permissions=["change"])
    def grant(self, request, queryset):
        self._decide_all(request, queryset, "grant")

    @admin.action(description="Reject selected requests", permissions=["change"])
    def reject(self, request, queryset):
        self._decide_all(request, queryset, "reject")

    @admin.action(description="Close selected requests", permissions=["change"])
    def close(self, request, queryset):
        self._decide_all(request, queryset, "close")
