"""Forms for the marketplace pages and the admin. They check shapes; the rules are in services."""

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from characters.models import Story

from .models import LedgerEntry
from .selectors import DEFAULT_SORT, GALLERY_SORTS

SORT_LABELS = {"popular": "Most votes", "recent": "Newest", "used": "Most used"}


class GalleryFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search by name")
    sort = forms.ChoiceField(choices=[(key, SORT_LABELS[key]) for key in GALLERY_SORTS], required=False)

    def values(self) -> tuple[str, str]:
        if not self.is_valid():
            return "", DEFAULT_SORT
        return self.cleaned_data["q"], self.cleaned_data["sort"] or DEFAULT_SORT


class BuyLicenseForm(forms.Form):
    license_type = forms.CharField(max_length=20)
    idempotency_key = forms.CharField(required=False, max_length=64)


class ExclusiveOfferForm(forms.Form):
    credits = forms.IntegerField(label="Your offer (credits)")
    message = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: what you plan to do with the character.",
    )

    story = forms.ModelChoiceField(
        queryset=Story.objects.none(),
        required=False,
        empty_label="The first story I use it in",
        label="For your story",
        help_text="An exclusive license is for one of your stories only.",
    )

    def __init__(self, *args, user=None, character=None, **kwargs):
        super().__init__(*args, **kwargs)
        minimum = settings.LICENSE_EXCLUSIVE_MIN_OFFER
        self.fields["credits"].widget.attrs.update({"min": minimum, "step": 1, "inputmode": "numeric"})
        self.fields["credits"].help_text = f"At least {minimum}. Charged only if the creator accepts."
        if user is not None and user.is_authenticated:
            stories = Story.objects.filter(Q(created_by=user) | Q(contributor_links__user=user)).distinct()
            if character is not None:
                stories = stories.exclude(pk=character.story_id)
            self.fields["story"].queryset = stories.order_by("title")


class GrantCreditsForm(forms.Form):
    KIND_CHOICES = [
        (LedgerEntry.Kind.GRANT, "Grant: add credits"),
        (LedgerEntry.Kind.ADJUSTMENT, "Adjustment: correct a balance up (+) or down (-)"),
    ]

    username = forms.CharField(max_length=150)
    kind = forms.ChoiceField(choices=KIND_CHOICES, initial=LedgerEntry.Kind.GRANT, widget=forms.RadioSelect)
    amount = forms.IntegerField(help_text="Credits. A grant is positive; an adjustment may be negative.")
    reason = forms.CharField(
        max_length=300, widget=forms.Textarea(attrs={"rows": 2}), help_text="Kept in the user's ledger."
    )

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"There is no user '{username}'.")
        self.user = user
        return username


class CreditRequestForm(forms.Form):
    amount = forms.IntegerField(label="Credits", min_value=1, help_text="How many credits you need.")
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What you want them for: the admins read it, and it is kept with the grant.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"].max_value = settings.CREDIT_GRANT_MAX
        self.fields["amount"].widget.attrs.update({"min": 1, "max": settings.CREDIT_GRANT_MAX, "step": 1})
