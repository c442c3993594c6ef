"""Stories, their clips, and the candidate frames the extraction pipeline finds in them."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Case, Q, When
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.text import slugify


def clip_upload_to(clip: "Clip", filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "mp4"
    return f"clips/{clip.story_id}/{uuid.uuid4().hex}.{ext}"


def playable_upload_to(clip: "Clip", filename: str) -> str:
    return f"clips/{clip.story_id}/{uuid.uuid4().hex}.playable.mp4"


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


class StoryContributor(models.Model):
    """Who has contributed to a story (uploaded a clip, submitted a design...), written by each app's service."""

    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="contributor_links")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="story_links")
    first_contribution = models.CharField(max_length=30)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["story", "user"], name="contributor_once_per_story")]

    def __str__(self) -> str:
        return f"{self.user} in {self.story}"


class Clip(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        EXTRACTING = "extracting", "Extracting"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    # Still in the pipeline (queued or extracting): the one list of unfinished clip statuses.
    IN_PROGRESS_STATUSES = (Status.UPLOADED, Status.EXTRACTING)

    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="clips")
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="clips")
    video = models.FileField(upload_to=clip_upload_to, max_length=300, help_text="The file as it was uploaded.")
    # H.264/yuv420p MP4 that browsers play and providers take; made by the extraction run. When the upload
    # already is one, this names the same file as `video` (no second copy).
    playable_video = models.FileField(upload_to=playable_upload_to, max_length=300, blank=True)
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
    # Following the extraction while it is queued or running (see selectors.stale_clips).
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the extraction: queued, started, progress, beats."
    )
    extraction_task_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="The task that may run the extraction now; any other delivery (a lost message come back) is ignored.",
    )
    extraction_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Times the current extraction was queued: 1, plus each time lost work was queued again."
    )

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
        return self.status not in self.IN_PROGRESS_STATUSES

    @property
    def status_message(self) -> str:
        """What is happening to the clip, in words: the one message pages, the API and the admin show."""
        if self.status == self.Status.UPLOADED:
            return "Waiting to start extracting frames."
        if self.status == self.Status.EXTRACTING:
            if not self.playable_video:  # the run's first step: the H.264 copy (characters.clips.services)
                return f"Converting the video to a copy every browser plays: {self.progress} %"
            return f"Extracting frames: {self.progress} %"
        if self.status == self.Status.FAILED:
            return self.error_message or "Frame extraction failed."
        if not self.people_found:
            message = "No person was found in this clip."
        else:
            count = len(self.candidates.all())  # prefetched by the pages and the API
            message = f"{count} candidate frame{'s' if count != 1 else ''} found."
        return f"{message} {self.warning_message}".strip()

    @property
    def playback_video(self):
        """The file to show and to decode: the playable copy once made, else the upload itself."""
        return self.playable_video or self.video


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
    low_quality = models.BooleanField(
        default=False,
        help_text=(
            "Under MIN_QUALITY_SCORE: offered only because a character in it (its detections marked low_quality) "
            "has no frame at the floor in the clip."
        ),
    )
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

    @cached_property
    def low_quality_for(self) -> str:
        """Whom a low-quality frame is offered for: the labels of its characters that have no frame at the floor
        in the clip ("" when it names none: the clip as a whole has none). One query, for such frames only."""
        ids = [d["group_id"] for d in self.detections if d.get("low_quality") and d.get("group_id")]
        if not self.low_quality or not ids:
            return ""
        labels = dict(CharacterGroup.objects.filter(pk__in=ids).values_list("pk", "label"))
        return ", ".join(labels[pk] for pk in dict.fromkeys(ids) if pk in labels)


def group_label_for(number: int) -> str:
    """ "Character A" ... "Character Z", "Character AA"...: the label of a story's `number`-th group (from 1)."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"Character {letters}"


class CharacterGroup(models.Model):
    """One character of a story as the clips show it: the tracks of all its clips that are the same one.

    `kind` "face": joined by face descriptors (characters.groups). "marked": a non-face character a
    contributor marked with a box (`Mark`), followed through its shot and found again in other clips by
    keypoints and colour (characters.vision.marking).
    """

    class Kind(models.TextChoices):
        FACE = "face", "Face"
        MARKED = "marked", "Marked"

    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="character_groups")
    number = models.PositiveIntegerField(help_text="1, 2, 3... in the story: Character A, B, C...")
    label = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.FACE)
    cover_frame = models.ForeignKey(
        CandidateFrame,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The group's best candidate frame.",
    )
    # The mean of its appearances' descriptors, kept so a new clip joins groups without reading every track.
    centroid = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["story", "number"]
        constraints = [models.UniqueConstraint(fields=["story", "number"], name="group_number_once_per_story")]

    def __str__(self) -> str:
        return f"{self.story}: {self.label}"


class Mark(models.Model):
    """A box a contributor drew around a character that is not a face; the job that follows and finds it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    IN_PROGRESS_STATUSES = (Status.QUEUED, Status.RUNNING)  # a run is queued or going: not re-run, shown with a bar

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="marks")
    group = models.ForeignKey(
        CharacterGroup,
        null=True,
        on_delete=models.SET_NULL,
        related_name="marks",
        help_text="The group it feeds (merges move marks along).",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="marks")
    seconds = models.FloatField()
    box = models.JSONField(help_text="{x, y, width, height} in pixels of the original frame.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0-100 while running.")
    error_message = models.TextField(blank=True)
    followed_samples = models.PositiveIntegerField(default=0, help_text="Sampled frames of its shot it was seen in.")
    found_samples = models.PositiveIntegerField(default=0, help_text="Sampled frames of other clips it was found in.")
    clips_searched = models.PositiveIntegerField(default=0)
    # Following the run while it is queued or running, as a clip's extraction is (see groups.selectors.stale_marks).
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the run: queued, started, progress, beats."
    )
    task_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="The task that may run the mark now; any other delivery (a lost message come back) is ignored.",
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Times the current run was queued: 1, plus each time lost work was queued again."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"], name="mark_status")]

    def __str__(self) -> str:
        return f"mark {self.pk} of clip {self.clip_id} @ {self.seconds:.1f} s"


class Appearance(models.Model):
    """One track: one appearance of one character in one shot of a clip, with its identity descriptor.

    A mark's appearances (`mark` set) are one per sampled frame it was followed or found in."""

    group = models.ForeignKey(
        CharacterGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="appearances"
    )
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="appearances")
    shot_index = models.PositiveIntegerField()
    track_index = models.PositiveIntegerField(help_text="The track's number in the clip (detections' `track`).")
    descriptor = models.JSONField(null=True, blank=True, help_text="128 floats (dlib); null when no face gave one.")
    start_seconds = models.FloatField()
    end_seconds = models.FloatField()
    samples = models.PositiveIntegerField(default=1, help_text="Sampled frames the track was seen in.")
    best_seconds = models.FloatField(default=0)
    best_frame = models.ForeignKey(
        CandidateFrame,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The best candidate frame showing this track, if one was kept.",
    )
    box = models.JSONField(default=dict, help_text="Its best face's box in pixels of the original frame.")
    pose = models.CharField(max_length=8, choices=CandidateFrame.Pose.choices, default=CandidateFrame.Pose.FRONTAL)
    quality = models.FloatField(default=0, help_text="Its best face's quality for identity (0-1).")
    mark = models.ForeignKey(
        Mark,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="appearances",
        help_text="The mark that followed or found it; empty for face tracks of the extraction.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["clip", "track_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "track_index"], condition=Q(mark__isnull=True), name="appearance_track_once"
            ),
            models.UniqueConstraint(fields=["mark", "clip", "track_index"], name="mark_appearance_once"),
        ]
        indexes = [models.Index(fields=["group", "-quality"], name="appearance_group_quality")]

    def __str__(self) -> str:
        return f"clip {self.clip_id} track {self.track_index} ({self.start_seconds:.0f}-{self.end_seconds:.0f} s)"

    @property
    def duration_seconds(self) -> float:
        return self.end_seconds - self.start_seconds


character_id_validator = RegexValidator(r"^[a-z0-9_]+$", "Use lowercase letters, digits and underscores only.")


def character_file_upload_to(instance, filename: str) -> str:
    character = instance if isinstance(instance, Character) else instance.character
    return f"characters/{character.character_id}/{filename}"


RENDER_STYLE_CHOICES = [
    ("photographic", "Photographic"),
    ("3d_animation", "3D animation"),
    ("2d_animation", "2D animation"),
]


class Character(models.Model):
    """A canonical character of a story and its DNA: references, palette, style and locked features."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        VOTING = "voting", "Voting"
        CANONICAL = "canonical", "Canonical"
        ARCHIVED = "archived", "Archived"

    character_id = models.CharField(max_length=100, unique=True, validators=[character_id_validator])
    name = models.CharField(max_length=100)
    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="characters")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CANDIDATE)
    style_description = models.CharField(max_length=500, blank=True)
    # The winning submission's own words, kept so a re-lock can compose the style again.
    submitted_description = models.CharField(max_length=500, blank=True)
    color_palette = models.JSONField(default=dict, blank=True, help_text='Role to "#RRGGBB".')
    locked_features = models.JSONField(default=list, blank=True)
    # Where each DNA fact came from (the DNA service keeps these and the text built from them in step):
    # feature records [{feature, source: measured|stated|default|dropped, key}], palette role -> measured|stated,
    # and what was measured at lock time: per region {color, pixels, region_pixels, share, frames}, render style.
    feature_sources = models.JSONField(default=list, blank=True)
    palette_sources = models.JSONField(default=dict, blank=True)
    measured = models.JSONField(default=dict, blank=True)
    render_style = models.CharField(max_length=16, blank=True, choices=RENDER_STYLE_CHOICES)
    render_style_source = models.CharField(max_length=10, blank=True, help_text="stated | measured")
    created_from_clip = models.ForeignKey(Clip, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The character group (who is who across the story's clips) the winning design showed: new clips whose
    # appearances join that group are recognised as this character. Null for characters from before identity.
    group = models.ForeignKey(
        CharacterGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="locked_characters"
    )
    total_votes = models.PositiveIntegerField(default=0)
    clips_used = models.PositiveIntegerField(default=0)
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="characters_created"
    )
    allow_licensing = models.BooleanField(default=False)
    # The winning submission this character was locked from (an id in the voting app): locks are idempotent on it.
    origin_submission_id = models.PositiveIntegerField(null=True, blank=True, unique=True)
    source_frames = models.ManyToManyField(CandidateFrame, blank=True, related_name="characters")
    dna_file = models.FileField(upload_to=character_file_upload_to, blank=True, max_length=300)
    model_sheet = models.ImageField(upload_to=character_file_upload_to, blank=True, max_length=300)
    lock_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["story", "status"], name="character_story_status"),
            models.Index(fields=["status", "-created_at"], name="character_status_created"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.character_id})"

    def get_absolute_url(self) -> str:
        return reverse("character-detail", args=[self.character_id])

    @property
    def is_marked(self) -> bool:
        """A marked (non-face) character: its DNA was measured from a marked box (characters.dna.images
        MARKED_SUBJECT), so its palette, references and consistency score rest on appearance, not a face."""
        return ((self.measured or {}).get("subject") or {}).get("kind") == CharacterGroup.Kind.MARKED

    @property
    def cover(self) -> "ReferenceImage | None":
        """The picture that stands for the character (ReferenceImage.cover_key); prefetch reference_images."""
        return min(self.reference_images.all(), key=ReferenceImage.cover_key, default=None)


class ReferenceImage(models.Model):
    class Kind(models.TextChoices):
        FULL_BODY = "full_body", "Full body"
        FACE_CLOSEUP = "face_closeup", "Face close-up"
        SIDE_PROFILE = "side_profile", "Side profile"
        EXTRA_ANGLE = "extra_angle", "Extra angle"

    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="reference_images")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    image = models.ImageField(upload_to=character_file_upload_to, max_length=300)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    source_frame = models.ForeignKey(CandidateFrame, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # What the picture really shows (the full_body slot may hold an upper-body shot when no frame had one).
    coverage = models.CharField(
        max_length=20, blank=True, help_text="full_body | upper_body | head_and_shoulders | face"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["character", "kind", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["character", "kind"], condition=~Q(kind="extra_angle"), name="one_reference_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.character.character_id}: {self.kind}"

    # The cover rule: a character's face close-up, else its first reference image (by kind, then age).
    # cover_key orders Python lists, cover_order() querysets; tests hold the two together.
    @staticmethod
    def cover_key(reference: "ReferenceImage") -> tuple:
        return (reference.kind != ReferenceImage.Kind.FACE_CLOSEUP, reference.kind, reference.pk)

    @classmethod
    def cover_order(cls) -> tuple:
        return (Case(When(kind=cls.Kind.FACE_CLOSEUP, then=0), default=1), "kind", "pk")


# --- Pinned characters: an admin pins a character's look from a clip frame as @ElementN of a story ---------

PIN_MAX_ANGLES = 6  # additional reference angles per pinned element (the plan's limit)
PIN_MAX_ELEMENTS_LIMIT = 7  # Kling O1 takes at most 7 inputs (an element counts as one), so no setting may exceed this


def pinned_image_name(story_id: int, element_index: int, suffix: str) -> str:
    """The exact storage name of a pin image: `pinned/{story}/{N}_frontal.jpg`, `..._angle_{k}.jpg`."""
    return f"pinned/{story_id}/{element_index}_{suffix}.jpg"


class PinningSettings(models.Model):
    """The `character_pinning` feature flag and its config. One row (pk 1), switched on by a data migration."""

    SINGLETON_PK = 1

    enabled = models.BooleanField(
        default=True, help_text="Off: the pin panel and the pinning APIs answer that character pinning is disabled."
    )
    max_elements_per_season = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(PIN_MAX_ELEMENTS_LIMIT)],
        help_text="How many @Element slots a story has (Kling O1 takes at most 7 inputs in all; an element is one).",
    )
    auto_switch_model = models.BooleanField(
        default=True, help_text="Generation switches to Kling O1 reference-to-video when a story has active pins."
    )
    cost_premium_warning = models.BooleanField(
        default=True, help_text="Tell contributors that reference-to-video costs more than text-to-video."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "character pinning settings"
        verbose_name_plural = "character pinning settings"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="pinning_settings_singleton")]

    def __str__(self) -> str:
        return f"Character pinning: {'on' if self.enabled else 'off'}"

    def save(self, *args, **kwargs):
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)


class PinnedCharacter(models.Model):
    """A character's look pinned for a story as `@Element{element_index}`: a frontal image and up to 6 angles.

    Image names are exact (see `pinned_image_name`); the pinning services write and delete them.
    """

    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="pinned_characters")
    element_index = models.PositiveSmallIntegerField(help_text="N in @ElementN.")
    label = models.CharField(max_length=100, blank=True)
    frontal_image = models.ImageField(max_length=300)
    frontal_width = models.PositiveIntegerField(default=0)
    frontal_height = models.PositiveIntegerField(default=0)
    source_clip = models.ForeignKey(Clip, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_frame_seconds = models.FloatField(null=True, blank=True)
    pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    character = models.ForeignKey(
        Character,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pins",
        help_text="The canonical character this pin shows, if any.",
    )
    usage_count = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["story", "element_index"]
        permissions = [("pin_character", "Can pin characters from clip frames")]
        constraints = [
            models.UniqueConstraint(fields=["story", "element_index"], name="pin_unique_story_element"),
            models.CheckConstraint(condition=Q(element_index__gte=1), name="pin_element_index_from_1"),
        ]
        indexes = [
            models.Index(fields=["story", "element_index"], condition=Q(is_active=True), name="pin_story_active"),
        ]

    def __str__(self) -> str:
        return f"{self.element_tag} {self.label}".strip()

    @property
    def element_tag(self) -> str:
        return f"@Element{self.element_index}"


class PinAngle(models.Model):
    """An additional reference angle of a pinned character, stored as `{N}_angle_{position}.jpg`."""

    pin = models.ForeignKey(PinnedCharacter, on_delete=models.CASCADE, related_name="angles")
    position = models.PositiveSmallIntegerField(help_text=f"1-{PIN_MAX_ANGLES}.")
    image = models.ImageField(max_length=300)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    source_clip = models.ForeignKey(Clip, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_frame_seconds = models.FloatField(null=True, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pin", "position"]
        constraints = [
            models.UniqueConstraint(fields=["pin", "position"], name="pin_angle_unique_position"),
            models.CheckConstraint(
                condition=Q(position__gte=1) & Q(position__lte=PIN_MAX_ANGLES), name="pin_angle_position_1_6"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pin.element_tag} angle {self.position}"


@receiver(post_delete, sender=PinnedCharacter)
@receiver(post_delete, sender=PinAngle)
def _delete_pin_image(sender, instance, **kwargs):
    """A pin's files go with its row, also when a story's deletion cascades to it.

    Deleted inside the deleting transaction (the pinning services hold the story's lock then), so a
    new pin taking the same slot right after can never lose its freshly written file.
    """
    field_file = instance.frontal_image if sender is PinnedCharacter else instance.image
    if field_file:
        field_file.storage.delete(field_file.name)
