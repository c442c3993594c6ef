"""Signal receivers: the marketplace's part of an account's life (connected in MarketplaceConfig.ready)."""

from allauth.account.signals import user_signed_up
from django.dispatch import receiver

from . import services


@receiver(user_signed_up, dispatch_uid="marketplace.signup_grant")
def grant_signup_credits(sender, request, user, **kwargs):
    services.credits_signup_grant(user=user)
