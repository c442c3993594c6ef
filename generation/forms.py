from django import forms
from django.utils.text import Truncator

from . import payloads
from .prompts import ASPECT_RATIOS
from .providers import offered_models
from .quotes import style_reference_kinds


def _model_choices():
    """The models offered here (their provider has a key, or the mode's default as an offline preview), priced."""
    choices = [("", "The default model for the request's mode")]
    for m in offered_models():
        price = "free offline preview" if m.offline_preview else f"${m.usd_per_second:.3f}/s"
        if m.price_note and not m.offline_preview:
            price += " (price not confirmed)"
        choices.append((m.model_id, f"{m.label} — {m.provider_label}, {m.capabilities.mode}, {price}"))
    return choices


def _duration_choices():
    # Every length an offered model makes; the chosen model's own lengths are checked when planning.
    lengths = set(payloads.all_durations()) | {d for m in offered_models() for d in m.capabilities.durations}
    return [(d, f"{d} seconds") for d in sorted(lengths)]


class CharacterSelect(forms.Select):
    """A select whose options carry the character's page and model sheet, for the banner beside it."""

    def __init__(self, *args, option_data: dict[str, dict[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.option_data = option_data or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["attrs"].update(self.option_data.get(str(value), {}))
        return option


class MultipleImageInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """Several files under one name; each is checked as an image by its content in the service, not here."""

    widget = MultipleImageInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data] if data else []
        if len(files) > payloads.MAX_INPUTS:
            raise forms.ValidationError(f"At most {payloads.MAX_INPUTS} style images fit in one request.")
        return [super(MultipleImageField, self).clean(f, initial) for f in files]


def prompt_placeholder(story) -> str:
    """An example scene for this story, from its title and description."""
    if story is None:
        return "Describe the next scene…"
    description = " ".join((story.description or "").split())
    if description:
        return f"The next scene of {story.title}: {Truncator(description).chars(140)}"
    return f"The next scene of {story.title}…"


class GenerateForm(forms.Form):
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=2500,
        help_text="Describe the scene. Pinned characters are added as @Element tags for you.",
    )
    duration = forms.TypedChoiceField(choices=_duration_choices, coerce=int, initial=5)
    aspect_ratio = forms.ChoiceField(choices=[(a, a) for a in ASPECT_RATIOS], initial="16:9")
    model_id = forms.ChoiceField(
        choices=_model_choices,
        required=False,
        label="Model",
        help_text="The models whose provider has a key here, with what they bill; it must make the request's mode.",
    )
    with_sound = forms.BooleanField(
        required=False,
        label="With sound",
        help_text="Native audio from the model, at its price with sound (Kling v2.6: $0.14/s instead of $0.07/s).",
    )
    # Rendered by the page from the quote's choices (which pins' clips can go as a video, and why not).
    video_element_pin = forms.IntegerField(
        required=False,
        min_value=1,
        label="Send a pinned character as its video clip",
        help_text="Kling O3 reference-to-video only: the pin's source clip goes instead of its images (one video "
        "per request, at most 4 inputs with it).",
    )
    # Style references (@Image1...): the character's DNA images picked on the page, then uploads.
    style_reference_kinds = forms.MultipleChoiceField(
        choices=[(k, k) for k in style_reference_kinds()], required=False, widget=forms.CheckboxSelectMultiple
    )
    style_images = MultipleImageField(
        required=False,
        label="Upload style images",
        help_text="JPEG, PNG or WebP, at most 10 MB, each side at least 300 px.",
        widget=MultipleImageInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    # The page shows one of these two, by the story's pinning settings (Quote.pins_on_request).
    without_pins = forms.BooleanField(required=False, label="Generate without the pinned character")
    with_pins = forms.BooleanField(required=False, label="Use the pinned character (Kling O1 reference-to-video)")

    def __init__(self, *args, story=None, usable=(), **kwargs):
        """`usable`: the characters the contributor may use (marketplace.selectors.usable_characters)."""
        super().__init__(*args, **kwargs)
        self.fields["prompt"].widget.attrs["placeholder"] = prompt_placeholder(story)
        self.usable = {row.character.character_id: row for row in usable}
        # A post that does not name a character gets the story's own, as the API does; one naming a character
        # that is not offered is refused.
        named = "character_id" in self.data if self.is_bound else bool(self.usable)
        if named:
            # Only the characters the access rule allows are offered; the service checks the same rule again.
            self.fields["character_id"] = forms.ChoiceField(
                label="Character",
                choices=[(key, f"{row.character.name} — {row.basis}") for key, row in self.usable.items()],
                initial=next(iter(self.usable), None),
                widget=CharacterSelect(
                    option_data={
                        key: {
                            "data-name": row.character.name,
                            "data-url": row.character.get_absolute_url(),
                            "data-sheet": row.character.model_sheet.url if row.character.model_sheet else "",
                        }
                        for key, row in self.usable.items()
                    }
                ),
                help_text="Your story's characters, and the characters you hold a license for (a clip spends one use).",
            )

    def clean(self):
        data = super().clean()
        if data.get("without_pins") and data.get("with_pins"):
            raise forms.ValidationError("Choose either to use the pinned character or to generate without it.")
        return data

    @property
    def use_pins(self) -> bool | None:
        """What the contributor asked for: True (the pins), False (no locks at all), None (the story's default)."""
        if self.cleaned_data.get("with_pins"):
            return True
        if self.cleaned_data.get("without_pins"):
            return False
        return None

    def chosen_character_id(self) -> str | None:
        """The character picked (or shown as picked), or None for the story's default."""
        if "character_id" not in self.fields:
            return None
        if self.is_bound:
            value = self.data.get("character_id") or ""
            return value if value in self.usable else None
        return self.fields["character_id"].initial
