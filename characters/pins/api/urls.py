from django.urls import path

from characters.pins.api import views

urlpatterns = [
    path("admin/pinned-characters", views.PinnedCharacterListCreateDeleteApi.as_view(), name="api-admin-pins"),
    path(
        "admin/pinned-characters/<int:pin_id>",
        views.PinnedCharacterDetailApi.as_view(),
        name="api-admin-pin-detail",
    ),
    path("admin/pinned-characters/<int:pin_id>/angles", views.PinAngleCreateApi.as_view(), name="api-admin-pin-angles"),
    path(
        "admin/pinned-characters/<int:pin_id>/angles/<int:position>",
        views.PinAngleDeleteApi.as_view(),
        name="api-admin-pin-angle-detail",
    ),
    path(
        "stories/<int:story_id>/pinned-characters", views.StoryPinnedCharacterListApi.as_view(), name="api-story-pins"
    ),
]
