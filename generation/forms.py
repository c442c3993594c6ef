from django import forms

from .prompts import ASPECT_RATIOS, DURATIONS


class GenerateForm(forms.Form):
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "She walks across the launch pad at dawn…"}),
        max_length=2500,
        help_text="Describe the scene. Pinned characters are added as @Element tags for you.",
    )
    duration = forms.TypedChoiceField(choices=[(d, f"{d} seconds") for d in DURATIONS], coerce=int, initial=5)
    aspect_ratio = forms.ChoiceField(choices=[(a, a) for a in ASPECT_RATIOS], initial="16:9")
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
