"""Page forms for submissions. They only collect and shape input; the rules live in voting.services."""

from django import forms
from django.core.exceptions import ValidationError

from characters.dna.images import MAX_FEATURE_CHARS, MAX_LOCKED_FEATURES
from characters.models import RENDER_STYLE_CHOICES

from .models import CHARACTER_NAME_MAX, STYLE_DESCRIPTION_MAX

STYLE_MAX, NAME_MAX = STYLE_DESCRIPTION_MAX, CHARACTER_NAME_MAX

# Which form field a service refusal belongs next to (by the service's error code).
ERROR_FIELDS = {
    "frame_count": "frame_ids",
    "foreign_frames": "frame_ids",
    "style_required": "style_description",
    "style_too_long": "style_description",
    "name_too_long": "character_name",
    "mixed_characters": "frame_ids",
    "invalid_group": "group_id",
    "slot_of_another_group": "group_id",
    "invalid_render_style": "render_style",
    "invalid_features": "features_to_keep",
}


class FrameIdsField(forms.Field):
    """The checked frame ids, as ints. Which frames and how many are allowed is the service's rule."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        try:
            return [int(v) for v in values]
        except (TypeError, ValueError):
            raise ValidationError("Frames are chosen by their numeric ids.", code="invalid") from None


class SubmissionForm(forms.Form):
    frame_ids = FrameIdsField(required=False, label="Frames")
    # The ids in the order they were picked (kept by voting.js); frames checked without it keep grid order.
    frame_order = forms.CharField(required=False, widget=forms.HiddenInput)
    group_id = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Character",
        help_text="Pick the character first; the frames you can choose are its frames.",
    )
    character_name = forms.CharField(
        required=False,
        label="Character name",
        widget=forms.TextInput(attrs={"maxlength": NAME_MAX, "placeholder": "Captain Mira Vance"}),
    )
    style_description = forms.CharField(
        required=False,  # the service says what is missing, in the product's words
        label="Style description",
        widget=forms.Textarea(
            attrs={
                "rows": 5,
                "maxlength": STYLE_MAX,
                "data-counter-max": STYLE_MAX,
                "placeholder": "White flight suit with orange mission patches, short dark hair, calm and determined.",
            }
        ),
    )

    render_style = forms.ChoiceField(
        required=False,
        label="Render style",
        choices=[("", "Not sure (the DNA measures a suggestion)"), *RENDER_STYLE_CHOICES],
        help_text="What the footage is. The Character DNA never calls footage photographic unless you say so "
        "or it measures so.",
    )
    features_to_keep = forms.CharField(
        required=False,
        label="Features to keep",
        help_text=f"One per line, up to {MAX_LOCKED_FEATURES}, each up to {MAX_FEATURE_CHARS} characters: what must "
        "never change (e.g. a scar over the left eye). Settings and actions belong in the style description.",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Freckles across the nose\nSilver ring, left hand"}),
    )

    def clean_features_to_keep(self) -> list[str]:
        return [line for line in (self.cleaned_data.get("features_to_keep") or "").splitlines() if line.strip()]

    def __init__(self, *args, groups=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group_id"].choices = [("", "Any (inferred from the frames)")] + [
            (view.group.pk, view.label) for view in groups
        ]

    def clean_frame_order(self) -> list[int]:
        raw = self.cleaned_data.get("frame_order") or ""
        return [int(part) for part in raw.split(",") if part.strip().isdigit()]

    def clean(self):
        cleaned = super().clean()
        # Checked frames in the order they were picked; frames checked without an order follow in grid order.
        # Kept under its own key: a refusal added to `frame_ids` later drops that key, not this one.
        checked = cleaned.get("frame_ids", [])
        ordered = [fid for fid in dict.fromkeys(cleaned.get("frame_order", [])) if fid in checked]
        cleaned["picked_frame_ids"] = ordered + [fid for fid in checked if fid not in ordered]
        return cleaned

    def submitted_frame_ids(self) -> list[int]:
        """The picked ids, to show again after a refusal (best effort when the ids themselves were bad)."""
        if not self.is_bound:
            return []
        if "picked_frame_ids" in getattr(self, "cleaned_data", {}):
            return self.cleaned_data["picked_frame_ids"]
        return [int(v) for v in self.data.getlist("frame_ids") if str(v).isdigit()]  # type: ignore[attr-defined]  # a QueryDict

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "frame_ids": data["picked_frame_ids"],
            "character_name": data["character_name"],
            "style_description": data["style_description"],
            "group_id": data.get("group_id"),
            "render_style": data.get("render_style", ""),
            "features_to_keep": data.get("features_to_keep", []),
        }

    def add_service_error(self, code: str, message: str, details: dict | None = None) -> None:
        """Show a refusal next to its field; a refusal listing several problems shows each of them."""
        problems = (details or {}).get("errors") or [{"code": code, "message": message}]
        for problem in problems:
            self.add_error(ERROR_FIELDS.get(problem["code"]), problem["message"])
