from django.urls import path

from characters.dna.api.views import CharacterDetailApi

urlpatterns = [
    path("characters/<slug:character_id>", CharacterDetailApi.as_view(), name="api-character-detail"),
]
