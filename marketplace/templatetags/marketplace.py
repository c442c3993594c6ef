"""`{% license_panel character %}`: the character page's license panel, with everything it needs.

The character page only adds `{% load marketplace %}` and `{% license_panel character %}`; the panel
reads the signed-in user from the request in the page's context.
"""

import uuid

from django import template
from django.conf import settings
from django.utils import timezone

from marketplace import selectors
from marketplace.forms import ExclusiveOfferForm
from marketplace.models import ExclusiveOffer
from marketplace.tiers import priced_tiers

register = template.Library()


@register.inclusion_tag("marketplace/_license_panel.html", takes_context=True)
def license_panel(context, character):
    request = context.get("request")
    user = getattr(request, "user", None)
    signed_in = bool(user and user.is_authenticated)
    can_manage = signed_in and (user.is_staff or user.pk == character.creator_id)
    holder = selectors.exclusive_holder(character)
    panel = {
        "character": character,
        "request": request,
        "user": user,
        "signed_in": signed_in,
        "can_manage": can_manage,
        "canonical": character.status == character.Status.CANONICAL,
        "exclusive_holder": holder,
        "tiers": priced_tiers(),
        "tier_rows": [{"tier": tier, "shortfall": 0} for tier in priced_tiers()],
        "min_offer": settings.LICENSE_EXCLUSIVE_MIN_OFFER,
        # One key per rendered panel: a double-clicked buy button buys once.
        "idempotency_key": uuid.uuid4().hex,
        "next": request.get_full_path() if request else "",
    }
    if signed_in:
        balance = selectors.wallet_balance(user)
        panel["balance"] = balance
        panel["tier_rows"] = [{"tier": tier, "shortfall": max(tier.cost - balance, 0)} for tier in panel["tiers"]]
        # Free access (creator, story contributor) hides the tiers: the purchase would be refused anyway.
        panel["access"] = selectors.character_access(user, character)
        panel["my_licenses"] = list(selectors.valid_licenses(user, character))
        panel["my_pending_offer"] = character.exclusive_offers.filter(
            buyer=user, status=ExclusiveOffer.Status.PENDING
        ).first()
        panel["offer_form"] = ExclusiveOfferForm(auto_id=f"offer_{character.pk}_%s", user=user, character=character)
    if can_manage:
        panel["pending_offers"] = list(selectors.pending_offers_for_character(character))
        panel["sales"] = selectors.creator_sales(character)
    panel["now"] = timezone.now()
    return panel
