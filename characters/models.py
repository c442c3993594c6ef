"""Stories, their clips, and the candidate frames the extraction pipeline finds in them."""
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.text import slugify


def clip_upload_to(clip: "Clip", filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "mp4"
    return f"clips/{clip.story_id}/{uuid.uuid4().hex}.{ext}"


def frame_upload_to(frame: "CandidateFrame", filename: str) -> str:
    return f"frames/{frame.clip.story_id}/{frame.clip_id}/{filename}"


def last_frame_upload_to(clip: "Clip", filename: str) -> str:
    return f"frames/{clip.story_id}/{clip.pk}/{filename}"


def format_timestamp(seconds: float) -> str:
    """`mm:ss` as the seed prints it (whole seconds, floor)."""
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


class Story(models.Model):
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stories_created")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "stories"

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("story-detail", args=[self.pk])

    @staticmethod
    def unique_slug_for(title: str) -> str:
        base = slugify(title)[:200] or "story"
        slug, n = base, 2
        while Story.objects.filter(slug=slug).exists():
            slug, n = f"{base}-{n}", n + 1
        return slug


class Clip(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        EXTRACTING = "extracting", "Extracting"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="clips")
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="clips")
    video = models.FileField(upload_to=clip_upload_to, max_length=300)
    original_filename = models.CharField(max_length=255, blank=True)
    source_url = models.URLField(max_length=2000, blank=True)
    position = models.PositiveIntegerField(default=0, help_text="Order of the clip in its story.")
    is_winner = models.BooleanField(default=False)

    size_bytes = models.BigIntegerField(default=0)
    duration_seconds = models.FloatField(default=0)
    fps = models.FloatField(default=0)
    frame_count = models.PositiveIntegerField(default=0)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    codec = models.CharField(max_length=32, blank=True)
    container = models.CharField(max_length=16, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0-100 while extracting.")
    error_message = models.TextField(blank=True)
    warning_message = models.TextField(blank=True)
    frames_analysed = models.PositiveIntegerField(default=0)
    people_found = models.BooleanField(default=False)
    last_frame = models.ImageField(upload_to=last_frame_upload_to, blank=True, max_length=300)
    last_frame_seconds = models.FloatField(null=True, blank=True)
    extraction_started_at = models.DateTimeField(null=True, blank=True)
    extraction_finished_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["story", "position", "created_at"]
        indexes = [
            models.Index(fields=["story", "position"], name="clip_story_position"),
            models.Index(fields=["status"], name="clip_status"),
        ]

    def __str__(self) -> str:
        return f"{self.story} · clip {self.position} ({self.original_filename or self.pk})"

    def get_absolute_url(self) -> str:
        return reverse("clip-detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED)


class CandidateFrame(models.Model):
    class Pose(models.TextChoices):
        FRONTAL = "frontal", "Frontal"
        LEFT = "left", "Left profile"
        RIGHT = "right", "Right profile"

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="candidates")
    seconds = models.FloatField()
    timestamp = models.CharField(max_length=8, help_text="mm:ss")
    image = models.ImageField(upload_to=frame_upload_to, max_length=300)
    thumbnail = models.ImageField(upload_to=frame_upload_to, max_length=300)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    rank = models.PositiveSmallIntegerField(default=0, help_text="1 = best frame of the clip.")

    quality = models.PositiveSmallIntegerField(help_text="0-100")
    sharpness_score = models.FloatField(default=0)
    lighting_score = models.FloatField(default=0)
    face_score = models.FloatField(default=0)
    composition_score = models.FloatField(default=0)

    dominant = models.BooleanField(default=False)
    pose = models.CharField(max_length=8, choices=Pose.choices, default=Pose.FRONTAL)
    full_body = models.BooleanField(default=False)
    occluded = models.BooleanField(default=False)
    detections = models.JSONField(default=list, help_text="Faces: box, confidence, landmarks, coverage, occlusion.")

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["clip", "rank"]
        indexes = [
            models.Index(fields=["clip", "-quality"], name="frame_clip_quality"),
            models.Index(fields=["clip", "rank"], name="frame_clip_rank"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quality__gte=0) & Q(quality__lte=100), name="frame_quality_0_100"),
        ]

    def __str__(self) -> str:
        return f"clip {self.clip_id} @ {self.timestamp} (q{self.quality})"
