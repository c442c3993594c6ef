"""Pages for canonical characters: the character sheet page and its files."""

from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render

from characters.dna import selectors, traits
from characters.models import Character, ReferenceImage


def character_detail(request, character_id):
    character = get_object_or_404(selectors.character_queryset(), character_id=character_id)
    regions = (character.measured or {}).get("regions", {})
    palette = []
    for role, code in character.color_palette.items():
        entry = regions.get(role)
        if character.palette_sources.get(role) == "measured" and entry:
            source = f"measured on {entry['pixels']:,} px in {len(entry['frames'])} frame(s)"
        else:
            source = "stated by an admin"
        palette.append((role.replace("_", " ").capitalize(), code, source))
    labels = {"measured": "measured", "stated": "stated by people", "default": "default"}
    records = character.feature_sources or [{"feature": f, "source": ""} for f in character.locked_features]
    measured_traits = (character.measured or {}).get("traits", {})
    features = []
    for r in records:
        if r.get("source") == "dropped":
            continue
        label = labels.get(r.get("source"), "")
        if r.get("source") == "measured" and r.get("key") in measured_traits:
            label = f"measured: {traits.trait_evidence(r['key'], measured_traits[r['key']])}"
        features.append({**r, "label": label})
    references = list(character.reference_images.all())
    for ref in references:
        ref.get_coverage_label = ref.coverage.replace("_", " ")
    return render(
        request,
        "characters/character_detail.html",
        {
            "character": character,
            "references": references,
            "palette": palette,
            "features": features,
            "marked": character.is_marked,
        },
    )


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
