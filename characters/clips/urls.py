from django.urls import path

from characters.clips import views

urlpatterns = [
    path("", views.home, name="home"),
    path("stories/new/", views.story_create, name="story-create"),
    path("stories/<int:pk>/", views.story_detail, name="story-detail"),
    path("clips/<int:pk>/", views.clip_detail, name="clip-detail"),
]
