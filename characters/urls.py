from django.urls import path

from . import views

urlpatterns = [
    path("stories/new/", views.story_create, name="story-create"),
    path("stories/<int:pk>/", views.story_detail, name="story-detail"),
    path("clips/<int:pk>/", views.clip_detail, name="clip-detail"),
]
