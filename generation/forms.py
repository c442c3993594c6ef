from django import forms

from . import payloads
from .prompts import ASPECT_RATIOS


def _duration_choices():
    # Every length a configured model makes; the chosen model's own lengths are checked when planning.
    return [(d, f"{d} seconds") for d in payloads.all_durations()]


class GenerateForm(forms.Form):
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "She walks across the launch pad at dawn…"}),
        max_length=2500,
        help_text="Describe the scene. Pinned characters are added as @Element tags for you.",
    )
    duration = forms.TypedChoiceField(choices=_duration_choices, coerce=int, initial=5)
    aspect_ratio = forms.ChoiceField(choices=[(a, a) for a in ASPECT_RATIOS], initial="16:9")
    with_sound = forms.BooleanField(
        required=False, label="With sound",
        help_text="Native audio from the model, at its price with sound (Kling v2.6: $0.14/s instead of $0.07/s).",
    )
    # The page shows one of these two, by the story's pinning settings (Quote.pins_on_request).
    without_pins = forms.BooleanField(required=False, label="Generate without the pinned character")
    with_pins = forms.BooleanField(required=False, label="Use the pinned character (Kling O1 reference-to-video)")

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
