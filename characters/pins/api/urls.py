from django.urls import path

from characters.pins.api import views

urlpatterns = [
    path("admin/pinned-characters", views.AdminPinnedCharactersApi.as_view(), name="api-admin-pins"),
    path(
        "admin/pinned-characters/<int:pin_id>",
        views.AdminPinnedCharacterDetailApi.as_view(),
        name="api-admin-pin-detail",
    ),
    path("admin/pinned-characters/<int:pin_id>/angles", views.AdminPinAnglesApi.as_view(), name="api-admin-pin-angles"),
    path(
        "admin/pinned-characters/<int:pin_id>/angles/<int:position>",
        views.AdminPinAngleDetailApi.as_view(),
        name="api-admin-pin-angle-detail",
    ),
    path("stories/<int:story_id>/pinned-characters", views.StoryPinnedCharactersApi.as_view(), name="api-story-pins"),
]
