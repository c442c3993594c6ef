"""Admin for canonical characters: references, palette preview, corrections through the DNA service."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from characters.dna import images, services
from characters.models import Character, ReferenceImage
from common.admin_html import palette_swatches, thumbnail
from common.exceptions import ServiceError


class ReferenceImageInline(admin.TabularInline):
    model = ReferenceImage
    extra = 0
    fields = ("kind", "coverage", "preview", "width", "height", "source_frame")
    readonly_fields = fields
    can_delete = False

    @admin.display(description="Image")
    def preview(self, ref):
        return thumbnail(ref.image, ref.get_kind_display(), height=96)

    def has_add_permission(self, request, obj=None):
        return False


class CharacterForm(forms.ModelForm):
    class Meta:
        model = Character
        fields = [
            "name",
            "render_style",
            "submitted_description",
            "color_palette",
            "locked_features",
            "allow_licensing",
        ]
        labels = {"submitted_description": "Designer's words (the style description is built from these)"}

    def clean(self):
        """Refuse an edit that would break the DNA schema, with the schema's own reasons."""
        cleaned = super().clean()
        features = cleaned.get("locked_features")
        if "locked_features" in self.changed_data and features is not None:
            # The service's rule for listed features, here so a refused list is a form error, not a
            # message next to "changed successfully".
            listed = images.clean_stated_features(features if isinstance(features, list) else [features])
            for problem in images.stated_feature_problems(listed, required=True):
                self.add_error("locked_features", problem)
        proposed = Character(**{f.attname: getattr(self.instance, f.attname) for f in Character._meta.concrete_fields})
        for field in ("name", "color_palette", "locked_features"):
            if field in cleaned:
                setattr(proposed, field, cleaned[field])
        problems = images.validate_dna(services.dna_document(proposed)) if self.instance.pk else []
        if problems:
            raise forms.ValidationError(problems)
        return cleaned


@admin.register(Character)
class CharacterAdmin(admin.ModelAdmin):
    form = CharacterForm
    list_display = (
        "name",
        "character_id",
        "story",
        "status",
        "cover",
        "palette",
        "total_votes",
        "clips_used",
        "allow_licensing",
    )
    list_filter = ("status", "allow_licensing")
    search_fields = ("name", "character_id", "story__title")
    list_select_related = ("story",)
    readonly_fields = (
        "character_id",
        "style_description",
        "story",
        "status",
        "creator",
        "total_votes",
        "clips_used",
        "created_from_clip",
        "origin_submission_id",
        "lock_error",
        "palette",
        "sheet",
        "dna_file",
    )
    inlines = [ReferenceImageInline]
    actions = ["relock", "archive"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("reference_images")

    @admin.display(description="Cover")
    def cover(self, character):
        """The picture that stands for the character everywhere (Character.cover)."""
        cover = character.cover
        return thumbnail(cover.image, cover.get_kind_display(), height=48) if cover and cover.image else "-"

    @admin.display(description="Palette")
    def palette(self, character):
        return palette_swatches(character.color_palette) or "-"

    @admin.display(description="Model sheet")
    def sheet(self, character):
        if not character.model_sheet:
            return "-"
        return format_html('<img src="{}" alt="Model sheet" class="cps-sheet">', character.model_sheet.url)

    def has_add_permission(self, request):
        return False  # characters are locked from a winning submission

    def save_model(self, request, obj, form, change):
        """Every change goes through the one DNA service: the text built from it, dna.json and the model
        sheet are rewritten in the same step (the style field edits the designer's words it is built from)."""
        changed = {f: form.cleaned_data[f] for f in form.changed_data if f in form.cleaned_data}
        if "submitted_description" in changed:
            changed["style_description"] = changed.pop("submitted_description")
        try:  # the form already checked the schema; the service checks again for every other caller
            services.character_update(character=obj, user=request.user, **changed)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    @admin.action(description="Re-lock: rebuild the DNA from its frames", permissions=["change"])
    def relock(self, request, queryset):
        for character in queryset:
            try:
                services.character_relock(character=character, user=request.user)
            except ServiceError as exc:
                self.message_user(request, f"{character}: {exc.message}", messages.ERROR)
            else:
                self.log_change(request, character, "Re-locked: DNA rebuilt")
                self.message_user(request, f"{character}: DNA rebuilt.", messages.SUCCESS)

    @admin.action(description="Archive selected characters", permissions=["change"])
    def archive(self, request, queryset):
        for character in queryset:
            services.character_archive(character=character, user=request.user)
            self.log_change(request, character, "Archived")
        self.message_user(request, f"{queryset.count()} archived.", messages.SUCCESS)
