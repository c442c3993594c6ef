from django.urls import path

from characters.groups import views

urlpatterns = [
    path("character-groups/<int:group_id>/", views.group_detail, name="character-group-detail"),
    path("character-groups/<int:group_id>/rename/", views.group_rename, name="character-group-rename"),
    path("character-groups/<int:group_id>/merge/", views.group_merge, name="character-group-merge"),
    path("character-groups/<int:group_id>/split/", views.group_split, name="character-group-split"),
]
