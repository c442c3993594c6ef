"""Character submissions, voting sessions and votes.

The database is the source of truth: a vote is a row, one per (session, voter) by a unique
constraint, and a submission's `vote_count` moves in the same transaction as its votes.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.text import slugify

from characters.models import RENDER_STYLE_CHOICES, CandidateFrame, CharacterGroup, Story

DEFAULT_CHARACTER_SLOT = "protagonist"


def group_slot_key(group: CharacterGroup) -> str:
    """The `character_slot` stored on a grouped design or session: the group's id, stable across renames
    (people see the label; the key only keeps the slot column unique if the group is ever deleted)."""
    return f"group-{group.pk}"


def group_slot(group: CharacterGroup) -> str:
    """The slot a grouped design is for, as the API shows it and a client may send it: its label as a slug."""
    return slugify(group.label)[:50] or group_slot_key(group)


def slot_label(obj: "CharacterSubmission | VotingSession") -> str:
    """What people see as the slot: the group's label, or the slug of a design from before identity."""
    group = obj.character_group if isinstance(obj, CharacterSubmission) else obj.group
    return group.label if group is not None else obj.character_slot


def slot_slug(obj: "CharacterSubmission | VotingSession") -> str:
    group = obj.character_group if isinstance(obj, CharacterSubmission) else obj.group
    return group_slot(group) if group is not None else obj.character_slot


# The longest design text; forms, serializers and the submission service read them from here.
STYLE_DESCRIPTION_MAX = 500
CHARACTER_NAME_MAX = 100


class CharacterSubmission(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        WITHDRAWN = "withdrawn", "Withdrawn"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="submissions")
    character_slot = models.SlugField(max_length=50, default=DEFAULT_CHARACTER_SLOT)
    submitter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions")
    frames: "models.ManyToManyField[CandidateFrame, SubmissionFrame]" = models.ManyToManyField(
        CandidateFrame, through="SubmissionFrame", related_name="submissions"
    )
    style_description = models.CharField(max_length=STYLE_DESCRIPTION_MAX)
    character_name = models.CharField(max_length=CHARACTER_NAME_MAX, blank=True)
    # The character (who is who across the story's clips) every frame of the design shows; null for designs
    # from before identity, or of frames where no group was found.
    character_group = models.ForeignKey(
        CharacterGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions"
    )
    # An admin's reason for letting in frames that identity says show other characters (a costume change the
    # face grouping split); empty for every ordinary design. Also in the admin log.
    mixed_characters_reason = models.TextField(blank=True)
    # The designer's explicit choices, carried into the Character DNA as stated facts.
    render_style = models.CharField(max_length=16, blank=True, choices=RENDER_STYLE_CHOICES)
    features_to_keep = models.JSONField(default=list, blank=True, help_text="1-10 short phrases, each up to 100 chars.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    vote_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["story", "character_slot", "status"], name="submission_story_slot")]

    def __str__(self) -> str:
        name = self.character_name or self.style_description[:40]
        return f"#{self.pk} {name} ({self.story})"

    @property
    def slot_label(self) -> str:
        return slot_label(self)

    @property
    def frame_ids(self) -> list[int]:
        return [link.frame_id for link in self.frame_links.all()]


class SubmissionFrame(models.Model):
    """A chosen frame, in the order the submitter picked it."""

    submission = models.ForeignKey(CharacterSubmission, on_delete=models.CASCADE, related_name="frame_links")
    frame = models.ForeignKey(CandidateFrame, on_delete=models.PROTECT, related_name="submission_links")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["submission", "position"]
        constraints = [models.UniqueConstraint(fields=["submission", "frame"], name="submission_frame_once")]

    def __str__(self) -> str:
        return f"submission {self.submission_id} frame {self.frame_id}"


class VotingSession(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        TIED = "tied", "Tied: awaiting an admin"
        COMPLETE = "complete", "Complete"
        CANCELLED = "cancelled", "Cancelled"

    # Open: voting, or a tie waiting for an admin. The one list (the constraint below must match it).
    OPEN_STATUSES = (Status.ACTIVE, Status.TIED)

    class Decision(models.TextChoices):
        MAJORITY = "majority", "Majority over quorum"
        EXPIRY = "expiry", "Plurality at expiry"
        TIE_BREAK = "tie_break", "Tie broken by the tie rule"
        RUNOFF = "runoff", "Tie sent to a runoff session"
        ADMIN = "admin", "Admin decision"
        CANCELLED = "cancelled", "Cancelled"
        NO_VOTES = "no_votes", "Expired with no votes"

    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="voting_sessions")
    character_slot = models.SlugField(max_length=50, default=DEFAULT_CHARACTER_SLOT)
    # The character the designs compete for. Null only for sessions from before identity (keyed by the slot).
    group = models.ForeignKey(
        CharacterGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="voting_sessions"
    )
    submissions = models.ManyToManyField(CharacterSubmission, related_name="voting_sessions")
    runoff_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="runoffs")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # The seed's threshold: a design wins early with floor(votes * percent / 100) + 1 votes (over the quorum);
    # 50 is a majority. An admin may lower it to break a deadlock (voting.services.session_lower_threshold).
    win_threshold_percent = models.PositiveSmallIntegerField(default=50)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    winner = models.ForeignKey(
        CharacterSubmission, null=True, blank=True, on_delete=models.PROTECT, related_name="sessions_won"
    )
    decided_by = models.CharField(max_length=12, choices=Decision.choices, blank=True)
    decided_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_reason = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            # Open sessions (voting, or a tie waiting for an admin) are one per story and character group,
            # and, for sessions from before identity, one per story and slot.
            models.UniqueConstraint(
                fields=["story", "group"],
                condition=Q(status__in=["active", "tied"], group__isnull=False),
                name="one_open_session_per_group",
            ),
            models.UniqueConstraint(
                fields=["story", "character_slot"],
                condition=Q(status__in=["active", "tied"]),
                name="one_open_session_per_slot",
            ),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="session_ends_after_start"),
            models.CheckConstraint(
                condition=Q(win_threshold_percent__gte=1, win_threshold_percent__lte=50), name="session_threshold_1_50"
            ),
        ]
        indexes = [models.Index(fields=["status", "ends_at"], name="session_status_ends")]

    def __str__(self) -> str:
        return f"Session {self.pk}: {self.story} / {self.slot_label} ({self.status})"

    @property
    def slot_label(self) -> str:
        return slot_label(self)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class Vote(models.Model):
    # No index of its own: both indexes below start with the session. Every vote writes each index.
    session = models.ForeignKey(VotingSession, on_delete=models.CASCADE, related_name="votes", db_index=False)
    submission = models.ForeignKey(CharacterSubmission, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="votes")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["session", "voter"], name="one_vote_per_voter_per_session")]
        indexes = [models.Index(fields=["session", "submission"], name="vote_session_submission")]

    def __str__(self) -> str:
        return f"{self.voter} -> #{self.submission_id} in session {self.session_id}"
