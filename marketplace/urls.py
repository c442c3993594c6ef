from django.urls import path

from . import views

urlpatterns = [
    path("gallery/", views.gallery, name="gallery"),
    path("gallery/characters/<slug:character_id>/license/", views.license_buy, name="marketplace-buy"),
    path(
        "gallery/characters/<slug:character_id>/exclusive-offer/",
        views.exclusive_offer_create,
        name="marketplace-offer",
    ),
    path("gallery/characters/<slug:character_id>/licensing/", views.licensing_toggle, name="marketplace-licensing"),
    path("gallery/offers/<int:offer_id>/<str:action>/", views.exclusive_offer_decide, name="marketplace-offer-decide"),
    path("me/licenses/", views.my_licenses, name="my-licenses"),
    path("me/offers/", views.my_offers, name="my-offers"),
    path("me/wallet/", views.my_wallet, name="my-wallet"),
    path("me/credits/request/", views.credits_request, name="credits-request"),
]
