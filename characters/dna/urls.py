from django.urls import path

from characters.dna import views as character_views

urlpatterns = [
    path("characters/<slug:character_id>/", character_views.character_detail, name="character-detail"),
    path(
        "characters/<slug:character_id>/references/<slug:kind>",
        character_views.character_reference,
        name="character-reference",
    ),
    path("characters/<slug:character_id>/files/<str:which>", character_views.character_file, name="character-file"),
]
