"""Marketplace pages: the gallery, buying and offering from a character's license panel, and the buyer's
licenses, offers and wallet. Each action calls one service; a refusal comes back as a message."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from characters.dna import services as dna_services
from characters.models import Character
from common.exceptions import ServiceError
from common.http import safe_next_url

from . import selectors, services
from .forms import BuyLicenseForm, CreditRequestForm, ExclusiveOfferForm, GalleryFilterForm
from .models import ExclusiveOffer
from .tiers import cheapest_cost, get_tier


def _back(request, character: Character | None = None):
    """Where to go after an action: a safe `next`, else the character's page, else the gallery."""
    return redirect(safe_next_url(request) or (character.get_absolute_url() if character else "gallery"))


def _attempt(request, action, success: str) -> bool:
    try:
        action()
    except ServiceError as exc:
        messages.error(request, exc.message)
        return False
    messages.success(request, success)
    return True


@require_GET
def gallery(request):
    filters = GalleryFilterForm(request.GET)
    query, sort = filters.values()
    listing = selectors.GalleryListing(sort=sort, query=query)
    try:
        number = int(request.GET.get("page") or 1)
    except ValueError:
        number = 1
    page = listing.page(number, settings.GALLERY_PAGE_SIZE, past_end_shows_last=True)
    for character in page:
        character.thumbnail_url = default_storage.url(character.cover_image) if character.cover_image else ""
    return render(
        request,
        "marketplace/gallery.html",
        {
            "page": page,
            "filters": filters,
            "query": query,
            "sort": sort,
            "sorts": [(key, label) for key, label in filters.fields["sort"].choices],
            "cheapest_cost": cheapest_cost(),
        },
    )


@require_POST
@login_required
def license_buy(request, character_id):
    character = get_object_or_404(Character, character_id=character_id)
    form = BuyLicenseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a license type.")
        return _back(request, character)
    tier = get_tier(form.cleaned_data["license_type"])
    label = tier.label.lower() if tier else form.cleaned_data["license_type"]
    _attempt(
        request,
        lambda: services.license_purchase(
            buyer=request.user,
            character=character,
            license_type=form.cleaned_data["license_type"],
            idempotency_key=form.cleaned_data["idempotency_key"],
        ),
        f"You licensed {character.name}: {label}.",
    )
    return _back(request, character)


@require_POST
@login_required
def exclusive_offer_create(request, character_id):
    character = get_object_or_404(Character, character_id=character_id)
    form = ExclusiveOfferForm(request.POST, user=request.user, character=character)
    if not form.is_valid():
        errors = [e for field_errors in form.errors.values() for e in field_errors]
        messages.error(request, "Your offer was not sent: " + " ".join(errors))
        return _back(request, character)
    _attempt(
        request,
        lambda: services.exclusive_offer_make(buyer=request.user, character=character, **form.cleaned_data),
        f"Your offer of {form.cleaned_data['credits']} credits was sent to the creator of {character.name}. "
        "Nothing is charged unless they accept.",
    )
    return _back(request, character)


@require_POST
@login_required
def licensing_toggle(request, character_id):
    character = get_object_or_404(Character, character_id=character_id)
    allow = request.POST.get("allow") == "1"
    if allow:
        success = f"{character.name} is open to licensing: it shows in the gallery."
    else:
        success = f"{character.name} is closed to licensing: it left the gallery; licenses already sold keep working."
    _attempt(
        request,
        lambda: dna_services.character_set_licensing(character=character, user=request.user, allow=allow),
        success,
    )
    return _back(request, character)


OFFER_ACTIONS = {
    "accept": (
        lambda request, offer: services.exclusive_offer_accept(offer_id=offer.pk, decided_by=request.user),
        "Offer accepted: {credits} credits were charged and the exclusive license granted.",
    ),
    "decline": (
        lambda request, offer: services.exclusive_offer_decline(
            offer_id=offer.pk, decided_by=request.user, note=request.POST.get("note", "")
        ),
        "Offer declined.",
    ),
    "withdraw": (
        lambda request, offer: services.exclusive_offer_withdraw(offer_id=offer.pk, buyer=request.user),
        "Offer withdrawn.",
    ),
}


@require_POST
@login_required
def exclusive_offer_decide(request, offer_id, action):
    if action not in OFFER_ACTIONS:
        raise Http404("No such action.")
    offer = get_object_or_404(ExclusiveOffer.objects.select_related("character"), pk=offer_id)
    run, success = OFFER_ACTIONS[action]
    _attempt(request, lambda: run(request, offer), success.format(credits=offer.credits))
    return _back(request, offer.character)


@login_required
def my_licenses(request):
    now = timezone.now()
    licenses = list(selectors.user_licenses(request.user))
    for license in licenses:
        license.state = license.state_at(now)
    return render(request, "marketplace/my_licenses.html", {"licenses": licenses})


@login_required
def my_offers(request):
    return render(
        request,
        "marketplace/my_offers.html",
        {
            "made": selectors.offers_made(request.user),
            "received": selectors.offers_received(request.user),
        },
    )


@login_required
def my_wallet(request):
    page = Paginator(selectors.wallet_ledger(request.user), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "marketplace/wallet.html",
        {
            "balance": selectors.wallet_balance(request.user),
            "page": page,
            "open_request": selectors.open_credit_request(request.user),
            "signup_grant": settings.CREDITS_SIGNUP_GRANT,
        },
    )


@login_required
def credits_request(request):
    """Ask the admins for credits (amount + reason); the page also lists the answers so far."""
    form = CreditRequestForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.credit_request_create(user=request.user, **form.cleaned_data)
            except ServiceError as exc:
                messages.error(request, exc.message)
                status = exc.status_code
            else:
                messages.success(
                    request, "Your request was sent to the admins. The credits show here once they grant it."
                )
                return redirect("my-wallet")
    return render(
        request,
        "marketplace/credits_request.html",
        {
            "form": form,
            "open_request": selectors.open_credit_request(request.user),
            "requests": selectors.credit_requests_of(request.user)[:20],
        },
        status=status,
    )
