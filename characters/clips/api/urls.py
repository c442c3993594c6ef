from django.urls import path

from characters.clips.api import views

urlpatterns = [
    path("stories", views.StoryListCreateApi.as_view(), name="api-story-list"),
    path("stories/<int:story_id>", views.StoryDetailApi.as_view(), name="api-story-detail"),
    path("stories/<int:story_id>/clips", views.StoryClipUploadApi.as_view(), name="api-story-clips"),
    path("clips/<int:clip_id>", views.ClipDetailApi.as_view(), name="api-clip-detail"),
    path("clips/<int:clip_id>/extract", views.ClipExtractApi.as_view(), name="api-clip-extract"),
]
