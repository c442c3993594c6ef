from django.urls import path

from . import views

urlpatterns = [
    path("gallery/characters", views.GalleryCharacterListApi.as_view(), name="api-gallery-characters"),
    path(
        "characters/<slug:character_id>/license",
        views.CharacterLicenseCreateApi.as_view(),
        name="api-character-license",
    ),
    path(
        "characters/<slug:character_id>/exclusive-offers",
        views.CharacterExclusiveOfferCreateApi.as_view(),
        name="api-character-exclusive-offers",
    ),
    path("exclusive-offers/<int:offer_id>/accept", views.ExclusiveOfferAcceptApi.as_view(), name="api-offer-accept"),
    path("exclusive-offers/<int:offer_id>/decline", views.ExclusiveOfferDeclineApi.as_view(), name="api-offer-decline"),
    path(
        "exclusive-offers/<int:offer_id>/withdraw",
        views.ExclusiveOfferWithdrawApi.as_view(),
        name="api-offer-withdraw",
    ),
    path("me/licenses", views.MyLicenseListApi.as_view(), name="api-me-licenses"),
    path("me/wallet", views.MyWalletDetailApi.as_view(), name="api-me-wallet"),
    path("admin/credit-grants", views.CreditGrantCreateApi.as_view(), name="api-admin-credit-grants"),
]
