from django.urls import path

from characters.dna.api.views import CharacterDetailView

urlpatterns = [
    path("characters/<slug:character_id>", CharacterDetailView.as_view(), name="api-character-detail"),
]
