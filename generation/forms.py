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
    without_pins = forms.BooleanField(required=False, label="Generate without the pinned character")
