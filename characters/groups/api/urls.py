from django.urls import path

from characters.groups.api import views

urlpatterns = [
    path(
        "stories/<int:story_id>/character-groups",
        views.StoryCharacterGroupListApi.as_view(),
        name="api-story-character-groups",
    ),
    path("character-groups/<int:group_id>", views.CharacterGroupDetailApi.as_view(), name="api-character-group"),
    path(
        "character-groups/<int:group_id>/appearances",
        views.CharacterGroupAppearanceListApi.as_view(),
        name="api-character-group-appearances",
    ),
    path(
        "character-groups/<int:group_id>/merge",
        views.CharacterGroupMergeApi.as_view(),
        name="api-character-group-merge",
    ),
    path(
        "character-groups/<int:group_id>/split",
        views.CharacterGroupSplitApi.as_view(),
        name="api-character-group-split",
    ),
    path("clips/<int:clip_id>/marks", views.ClipMarkCreateApi.as_view(), name="api-clip-marks"),
    path("marks/<int:mark_id>", views.MarkDetailApi.as_view(), name="api-mark"),
    path("marks/<int:mark_id>/rerun", views.MarkRerunApi.as_view(), name="api-mark-rerun"),
]
