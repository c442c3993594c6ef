"""Page forms. They only collect input; the rules (video checks, slugs) live in services."""

from django import forms
from django.conf import settings

from common.upload_size import clip_size_hint

# A hint for the file picker only: any file with a video stream is taken (characters.vision.video decides).
# Some systems give .mkv/.avi no video/* type, hence the extensions.
ACCEPTED_VIDEO_TYPES = "video/*,.mkv,.avi,.mov,.webm,.mp4"


class StoryForm(forms.Form):
    title = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"placeholder": "The Lighthouse Keeper"}))
    description = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What is this story about? (optional)"}),
    )


class ClipUploadForm(forms.Form):
    video = forms.FileField(
        label="Video clip",
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPTED_VIDEO_TYPES}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["video"].help_text = (
            f"MP4, MOV, WebM, MKV, AVI or another video format · up to {settings.CLIP_MAX_SECONDS:g} seconds · "
            f"{clip_size_hint()}"
        )
