"""Admin for stories, clips and candidate frames (the clips room).

Clips and frames are made by the upload services and the extraction pipeline, which validate and
clean up after themselves, so the admin does not add them by hand; it reviews them, and re-runs
extraction through the same service the pages and the API use.
"""

import json

from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html
from django.utils.translation import ngettext

from characters.clips import services
from characters.models import CandidateFrame, Clip, Story
from characters.pins import admin as pin_admin
from common.admin_html import progress_bar, score_meter, thumbnail
from common.exceptions import ServiceError


def status_with_progress(clip: Clip):
    """The status as a coloured label; while in progress, with a bar."""
    label = format_html('<span class="cps-status cps-status--{}">{}</span>', clip.status, clip.get_status_display())
    if clip.is_finished:
        return label
    return format_html("{}{}", label, progress_bar(clip.progress))


class ClipInline(admin.TabularInline):
    model = Clip
    fields = (
        "position",
        "last_frame_thumbnail",
        "original_filename",
        "status_display",
        "duration",
        "uploader",
        "created_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("position", "created_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("uploader", "story")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Last frame")
    def last_frame_thumbnail(self, clip):
        return thumbnail(clip.last_frame, "Last frame", height=40)

    @admin.display(description="Status")
    def status_display(self, clip):
        return status_with_progress(clip)

    @admin.display(description="Duration")
    def duration(self, clip):
        return f"{clip.duration_seconds:.1f} s"


@admin.register(Story)
class StoryAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "created_by", "clip_count", "created_at")
    list_select_related = ("created_by",)
    search_fields = ("title", "slug", "description", "created_by__username")
    list_filter = ("created_at",)
    date_hierarchy = "created_at"
    prepopulated_fields = {"slug": ("title",)}
    autocomplete_fields = ("created_by",)
    readonly_fields = ("created_at", "updated_at")
    inlines = [ClipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(clip_count=Count("clips"))

    def get_urls(self):
        return pin_admin.story_pin_urls(self) + super().get_urls()  # the pin panel, from the story

    @admin.display(description="Clips", ordering="clip_count")
    def clip_count(self, story):
        return story.clip_count


class CandidateFrameInline(admin.TabularInline):
    model = CandidateFrame
    fields = ("rank", "thumbnail_preview", "timestamp", "quality_display", "pose", "dominant", "full_body")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("rank",)

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Frame")
    def thumbnail_preview(self, frame):
        return thumbnail(frame.thumbnail, f"Frame at {frame.timestamp}")

    @admin.display(description="Quality")
    def quality_display(self, frame):
        return score_meter(frame.quality)


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = (
        "clip_label",
        "story",
        "position",
        "last_frame_thumbnail",
        "status_display",
        "duration",
        "resolution",
        "candidate_count",
        "uploader",
    )
    list_display_links = ("clip_label",)
    list_filter = ("status", "is_winner", "codec", "container", ("story", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("story", "uploader")
    search_fields = ("story__title", "original_filename", "uploader__username")
    date_hierarchy = "created_at"
    actions = ["reextract_frames", "resume_stuck_extractions"]
    inlines = [CandidateFrameInline]
    readonly_fields = (
        "story",
        "uploader",
        "video_player",
        "original_filename",
        "source_url",
        "status_display",
        "status_message",
        "error_message",
        "warning_message",
        "duration",
        "resolution",
        "fps",
        "frame_count",
        "codec",
        "container",
        "file_size",
        "frames_analysed",
        "people_found",
        "last_frame_preview",
        "last_frame_seconds",
        "extraction_started_at",
        "extraction_finished_at",
        "heartbeat_at",
        "extraction_attempts",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("story", "uploader", "position", "is_winner", "video_player")}),
        (
            "Extraction",
            {
                "fields": (
                    "status_display",
                    "status_message",
                    "error_message",
                    "warning_message",
                    "frames_analysed",
                    "people_found",
                    "extraction_started_at",
                    "extraction_finished_at",
                    "heartbeat_at",
                    "extraction_attempts",
                )
            },
        ),
        (
            "Video",
            {
                "fields": (
                    "original_filename",
                    "source_url",
                    "duration",
                    "resolution",
                    "fps",
                    "frame_count",
                    "codec",
                    "container",
                    "file_size",
                )
            },
        ),
        ("Last frame", {"fields": ("last_frame_preview", "last_frame_seconds")}),
        ("Dates", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(candidate_count=Count("candidates"))

    def get_urls(self):
        return pin_admin.clip_pin_urls(self) + super().get_urls()  # the pin panel and its frame preview

    def has_add_permission(self, request):
        # Uploads go through the story page or the API, where the video is validated before it is kept.
        return False

    @admin.action(description="Re-extract frames", permissions=["change"])
    def reextract_frames(self, request, queryset):
        count = 0
        for clip in queryset.select_related("story"):
            try:
                services.clip_request_extraction(clip=clip, user=request.user)
            except ServiceError as exc:
                self.message_user(request, f"{clip}: {exc.message}", messages.WARNING)
                continue
            self.log_change(request, clip, "Re-extract frames requested.")
            count += 1
        self.message_user(
            request,
            ngettext(
                "Frame extraction queued again for %(count)d clip.",
                "Frame extraction queued again for %(count)d clips.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(
        description="Resume stuck extractions (queue again, or fail after too many tries)", permissions=["change"]
    )
    def resume_stuck_extractions(self, request, queryset):
        # The beat's own sweep, on the selected clips only: the same rule for "stuck" and the same attempt limit.
        outcome = services.clips_resume_stale(clip_ids=queryset.values_list("pk", flat=True))
        for pk in outcome["requeued"] + outcome["failed"]:
            self.log_change(request, Clip.objects.get(pk=pk), "Stuck extraction resumed by an admin.")
        left = queryset.count() - len(outcome["requeued"]) - len(outcome["failed"])
        self.message_user(
            request,
            f"Queued again: {len(outcome['requeued'])}; failed after too many tries: {len(outcome['failed'])}; "
            f"not stuck (finished, or showing signs of life): {left}.",
            messages.SUCCESS,
        )

    @admin.display(description="Clip", ordering="pk")
    def clip_label(self, clip):
        return clip.original_filename or f"Clip #{clip.pk}"

    @admin.display(description="Last frame")
    def last_frame_thumbnail(self, clip):
        return thumbnail(clip.last_frame, "Last frame")

    @admin.display(description="Last frame")
    def last_frame_preview(self, clip):
        return thumbnail(clip.last_frame, "Last frame", height=180)

    @admin.display(description="Status", ordering="status")
    def status_display(self, clip):
        return status_with_progress(clip)

    @admin.display(description="Duration", ordering="duration_seconds")
    def duration(self, clip):
        return f"{clip.duration_seconds:.1f} s"

    @admin.display(description="Resolution", ordering="height")
    def resolution(self, clip):
        return f"{clip.width}×{clip.height}"

    @admin.display(description="Candidates", ordering="candidate_count")
    def candidate_count(self, clip):
        return clip.candidate_count

    @admin.display(description="File size", ordering="size_bytes")
    def file_size(self, clip):
        from django.template.defaultfilters import filesizeformat

        return filesizeformat(clip.size_bytes)

    @admin.display(description="Video")
    def video_player(self, clip):
        if not clip.video:
            return "—"
        return format_html(
            '<video class="cps-video" controls preload="metadata" src="{}"></video>'
            '<div><a href="{}" target="_blank" rel="noopener">Open the original file</a></div>',
            clip.playback_video.url,
            clip.video.url,
        )


@admin.register(CandidateFrame)
class CandidateFrameAdmin(admin.ModelAdmin):
    """Frames are the pipeline's output: reviewed here, replaced by re-extracting their clip."""

    list_display = (
        "thumbnail_preview",
        "frame_label",
        "story",
        "timestamp",
        "quality_display",
        "pose",
        "dominant",
        "full_body",
        "occluded",
        "rank",
    )
    list_display_links = ("thumbnail_preview", "frame_label")
    list_filter = ("pose", "dominant", "full_body", "occluded", ("clip__story", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("clip__story",)
    search_fields = ("clip__story__title", "clip__original_filename", "timestamp")
    ordering = ("clip", "rank")
    actions = None
    fieldsets = (
        (None, {"fields": ("image_preview", "clip", "timestamp", "seconds", "rank", "size")}),
        (
            "Quality",
            {"fields": ("quality_display", "sharpness_score", "lighting_score", "face_score", "composition_score")},
        ),
        ("Subject", {"fields": ("pose", "dominant", "full_body", "occluded", "detections_pretty")}),
    )
    readonly_fields = (
        "image_preview",
        "clip",
        "timestamp",
        "seconds",
        "rank",
        "size",
        "quality_display",
        "sharpness_score",
        "lighting_score",
        "face_score",
        "composition_score",
        "pose",
        "dominant",
        "full_body",
        "occluded",
        "detections_pretty",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Frame")
    def thumbnail_preview(self, frame):
        return thumbnail(frame.thumbnail, f"Frame at {frame.timestamp}")

    @admin.display(description="Candidate", ordering="pk")
    def frame_label(self, frame):
        return f"#{frame.pk} · clip {frame.clip.position}"

    @admin.display(description="Story", ordering="clip__story__title")
    def story(self, frame):
        return frame.clip.story

    @admin.display(description="Quality", ordering="quality")
    def quality_display(self, frame):
        return score_meter(frame.quality)

    @admin.display(description="Image")
    def image_preview(self, frame):
        if not frame.image:
            return "—"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>',
            frame.image.url,
            thumbnail(frame.image, f"Frame at {frame.timestamp}", height=320),
        )

    @admin.display(description="Size")
    def size(self, frame):
        return f"{frame.width}×{frame.height}"

    @admin.display(description="Detections")
    def detections_pretty(self, frame):
        return format_html('<pre class="cps-json">{}</pre>', json.dumps(frame.detections, indent=2, sort_keys=True))
