"""Generation jobs: one request to a video provider, from the prompt we built to the stored clip and its score."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from characters.models import Character, Story


def new_job_id() -> str:
    return f"gen_{secrets.token_hex(6)}"


def generated_video_upload_to(job: "GenerationJob", filename: str) -> str:
    return f"generated/{job.story_id}/{job.job_id}.mp4"


OFFLINE_SCORE_NOTE = (
    "Not meaningful: this offline preview is a camera move over the reference images themselves, so its score "
    "compares the references with themselves and says nothing about how a model keeps the character."
)
PER_CHARACTER_SCORE_NOTE = (
    "Scored per character: each character the job asked for is compared with its own references, and the score is "
    "their mean, so a frame that shows only one of them counts half."
)
MIXED_BASIS = "mixed"  # a frame's basis when faces and marked (appearance-scored) characters were scored together
APPEARANCE_SCORE_NOTE = (
    "Scored by appearance: the character is not a face, so each sampled frame is matched to the references by "
    "keypoints (with a geometric check) and colours; a frame where it is not found counts as a miss."
)


class GenerationJob(models.Model):
    class Mode(models.TextChoices):
        REFERENCE_TO_VIDEO = "reference-to-video", "Reference to video (pinned characters)"
        IMAGE_TO_VIDEO = "image-to-video", "Image to video (Character DNA)"
        TEXT_TO_VIDEO = "text-to-video", "Text to video"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SUBMITTED = "submitted", "Submitted"
        PROCESSING = "processing", "Processing"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # Unfinished: waiting for its submission or at the provider. The one list of open job statuses.
    ACTIVE_STATUSES = (Status.QUEUED, Status.SUBMITTED, Status.PROCESSING)
    # Sent to the provider and not back yet: what polling and provider updates may move.
    AT_PROVIDER_STATUSES = (Status.SUBMITTED, Status.PROCESSING)

    job_id = models.CharField(max_length=32, unique=True, default=new_job_id, editable=False)
    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="generation_jobs")
    character = models.ForeignKey(
        Character, null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_jobs"
    )
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="generation_jobs")
    idempotency_key = models.CharField(max_length=100, blank=True)

    mode = models.CharField(max_length=24, choices=Mode.choices)
    model_id = models.CharField(max_length=120)
    user_prompt = models.TextField()
    prompt_used = models.TextField()
    negative_prompt = models.TextField(blank=True)
    arguments = models.JSONField(default=dict, help_text="Exactly what was sent to the provider.")
    elements = models.JSONField(default=list, blank=True)
    pinned_character_ids = models.JSONField(default=list, blank=True)
    style_references = models.JSONField(
        default=list,
        blank=True,
        help_text="The style images sent (@Image1 first): {position, source (dna | upload), kind, label, url, name}.",
    )
    reference_image_used = models.CharField(max_length=20, blank=True)
    duration = models.PositiveSmallIntegerField(default=5)
    aspect_ratio = models.CharField(max_length=8, default="16:9")
    with_audio = models.BooleanField(default=False, help_text="The contributor asked for sound (priced higher).")
    cost_usd = models.DecimalField(
        max_digits=8, decimal_places=3, default=0, help_text="What the provider bills (0 for the offline provider)."
    )
    would_cost_usd = models.DecimalField(
        max_digits=8,
        decimal_places=3,
        default=0,
        help_text="What the model would bill on fal for the same request: the offline provider's jobs cost nothing.",
    )
    characters = models.ManyToManyField(
        Character,
        blank=True,
        related_name="attributed_generation_jobs",
        help_text="Every character the clip shows: those whose pins it sent (else its one character). License checks, "
        "license uses and clips_used apply to each.",
    )
    license_use_refs = models.JSONField(
        default=list, blank=True, help_text="The license uses this job spent (marketplace job refs), one per license."
    )

    provider = models.CharField(max_length=20)
    provider_request_id = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    queue_position = models.IntegerField(null=True, blank=True)
    estimated_seconds = models.PositiveIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    submit_started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a submission to the provider began, recorded before the call. With no request id, its "
        "outcome is unknown (a worker died mid-call): the job is not submitted again blindly.",
    )

    video = models.FileField(upload_to=generated_video_upload_to, blank=True, max_length=300)
    consistency_score = models.PositiveSmallIntegerField(null=True, blank=True)
    frame_scores = models.JSONField(default=list, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["requester", "idempotency_key"], condition=~Q(idempotency_key=""), name="one_job_per_key"
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_request_id"],
                condition=~Q(provider_request_id=""),
                name="one_job_per_provider_request",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="job_status_updated"),
            models.Index(fields=["story", "completed_at"], name="job_story_completed"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} ({self.mode}, {self.status})"

    def get_absolute_url(self) -> str:
        return reverse("generation-job", args=[self.job_id])

    def attributed_character_pks(self) -> list[int]:
        """The characters this clip counts for (clips_used): its attributed ones, else (a job made without them) its
        one character."""
        pks = list(self.characters.values_list("pk", flat=True))
        return pks or ([self.character_id] if self.character_id else [])

    @property
    def is_finished(self) -> bool:
        return self.status not in self.ACTIVE_STATUSES

    @property
    def model_label(self) -> str:
        return settings.GENERATION_MODELS.get(self.model_id, {}).get("label", self.model_id)

    @property
    def is_offline_preview(self) -> bool:
        """Made on this machine from the references, not by the model: free, and its score means nothing."""
        return self.provider == "offline"

    @property
    def scored_by_appearance(self) -> bool:
        """Scored on a marked (non-face) character's keypoints and colours, not on a face (or not only)."""
        return any(frame.get("basis") in ("appearance", MIXED_BASIS) for frame in self.frame_scores or [])

    @property
    def scored_per_character(self) -> bool:
        """Several characters were asked for, each scored on its own references (scoring.score_clip)."""
        return any("characters" in frame for frame in self.frame_scores or [])

    @property
    def character_scores(self) -> list[dict]:
        """Each scored character's name and own score (the mean of its sampled frames), when several were."""
        totals: dict[str, list[int]] = {}
        for frame in self.frame_scores or []:
            for entry in frame.get("characters") or []:
                totals.setdefault(entry["name"], []).append(entry["score"])
        return [{"name": name, "score": round(sum(v) / len(v))} for name, v in totals.items()]

    @property
    def consistency_note(self) -> str:
        """What the consistency score rests on, where it is not the usual face + palette comparison."""
        if self.is_offline_preview:
            return OFFLINE_SCORE_NOTE
        notes = [
            PER_CHARACTER_SCORE_NOTE if self.scored_per_character else "",
            APPEARANCE_SCORE_NOTE if self.scored_by_appearance else "",
        ]
        return " ".join(filter(None, notes))

    @property
    def submission_unconfirmed(self) -> bool:
        """A submission began but its outcome never came back: the provider may or may not have the request."""
        return self.status == self.Status.QUEUED and not self.provider_request_id and self.submit_started_at is not None


class WebhookDelivery(models.Model):
    """Each verified provider webhook, once: fal retries for hours, so the same delivery can arrive again."""

    provider = models.CharField(max_length=20)
    request_id = models.CharField(max_length=120)
    signature = models.CharField(max_length=256)
    received_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "request_id", "signature"], name="webhook_delivered_once")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.request_id} ({self.outcome})"
