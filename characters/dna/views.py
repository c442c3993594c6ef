"""Pages for canonical characters: the character sheet page and its files."""
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render

from characters.dna import selectors
from characters.models import Character, ReferenceImage


def character_detail(request, character_id):
    character = get_object_or_404(selectors.character_queryset(), character_id=character_id)
    return render(request, "characters/character_detail.html", {
        "character": character,
        "references": list(character.reference_images.all()),
        "palette": [(role.replace("_", " ").capitalize(), code) for role, code in character.color_palette.items()],
    })


def character_reference(request, character_id, kind):
    """Stable address of a reference image (used in dna.json); redirects to the stored file's URL."""
    ref = ReferenceImage.objects.filter(character__character_id=character_id, kind=kind).order_by("pk").first()
    if ref is None:
        raise Http404("No such reference image.")
    return redirect(ref.image.url)


def character_file(request, character_id, which):
    character = get_object_or_404(Character, character_id=character_id)
    field = {"dna.json": character.dna_file, "model_sheet.png": character.model_sheet}.get(which)
    if not field:
        raise Http404("This character has no such file yet.")
    return redirect(field.url)
