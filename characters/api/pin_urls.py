from django.urls import path

from . import pin_views

urlpatterns = [
    path("admin/pinned-characters", pin_views.AdminPinnedCharactersApi.as_view(), name="api-admin-pins"),
    path("admin/pinned-characters/<int:pin_id>", pin_views.AdminPinnedCharacterDetailApi.as_view(),
         name="api-admin-pin-detail"),
    path("admin/pinned-characters/<int:pin_id>/angles", pin_views.AdminPinAnglesApi.as_view(),
         name="api-admin-pin-angles"),
    path("admin/pinned-characters/<int:pin_id>/angles/<int:position>", pin_views.AdminPinAngleDetailApi.as_view(),
         name="api-admin-pin-angle-detail"),
    path("stories/<int:story_id>/pinned-characters", pin_views.StoryPinnedCharactersApi.as_view(),
         name="api-story-pins"),
]
