"""Request and response shapes of the voting API. Rules live in voting.services, not here."""

from rest_framework import serializers

from characters.dna.images import MAX_FEATURE_CHARS, MAX_LOCKED_FEATURES
from characters.models import RENDER_STYLE_CHOICES
from voting.models import (
    CHARACTER_NAME_MAX,
    DEFAULT_CHARACTER_SLOT,
    STYLE_DESCRIPTION_MAX,
    CharacterSubmission,
    VotingSession,
    slot_slug,
)

SLOT_HELP = (
    "The character this is for: its character group's label as a slug (e.g. `character-a`), or for designs "
    "from before identity the slot they were sent with."
)

# --- Submissions ----------------------------------------------------------------------------


class SubmissionCreateSerializer(serializers.Serializer):
    frame_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), help_text="1-10 candidate frames from this story's clips."
    )
    style_description = serializers.CharField(allow_blank=True, help_text=f"Up to {STYLE_DESCRIPTION_MAX} characters.")
    character_slot = serializers.SlugField(
        max_length=50,
        required=False,
        allow_blank=True,
        default="",
        help_text="For clients from before character groups. The group is inferred from the frames and the slot "
        "must agree with it: a slot that is another group's label (as a slug) is refused "
        "(`slot_of_another_group`); a slot naming no group becomes the label of a still unnamed group "
        '("Character A"); a named group keeps its label. Frames with no group keep the slot as given '
        f"(default `{DEFAULT_CHARACTER_SLOT}`).",
    )
    character_name = serializers.CharField(
        required=False, allow_blank=True, default="", help_text=f"Up to {CHARACTER_NAME_MAX} characters."
    )
    render_style = serializers.ChoiceField(
        choices=RENDER_STYLE_CHOICES,
        required=False,
        allow_blank=True,
        default="",
        help_text="What the footage is; without it the Character DNA measures a suggestion.",
    )
    features_to_keep = serializers.ListField(
        child=serializers.CharField(max_length=MAX_FEATURE_CHARS),
        required=False,
        default=list,
        max_length=MAX_LOCKED_FEATURES,
        help_text=f"Up to {MAX_LOCKED_FEATURES} features that must never change, each up to {MAX_FEATURE_CHARS} "
        "characters.",
    )
    group_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The character group (GET /stories/{id}/character-groups) the frames show; inferred from the "
        "frames when left out. Frames of another character are refused (`mixed_characters`).",
    )
    mixed_characters_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=500,
        help_text="Admins only (else 403 `override_forbidden`), with `group_id`: let in frames that identity says "
        "show other characters (a costume change), for this reason; kept on the design and in the admin log.",
    )

    def validate_character_slot(self, value: str) -> str:
        return value.lower()


class SubmissionSerializer(serializers.ModelSerializer):
    """The seed's submission body, plus the slot, the name and the open session it is in."""

    story_id = serializers.IntegerField(read_only=True)
    frame_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    voting_session_id = serializers.SerializerMethodField()
    group_id = serializers.IntegerField(
        source="character_group_id",
        read_only=True,
        allow_null=True,
        help_text="The character group the design's frames show.",
    )
    character_slot = serializers.SerializerMethodField(help_text=SLOT_HELP)
    slot_label = serializers.CharField(read_only=True, help_text="The slot as people see it: the group's label.")

    class Meta:
        model = CharacterSubmission
        fields = [
            "id",
            "story_id",
            "frame_ids",
            "style_description",
            "vote_count",
            "status",
            "created_at",
            "character_slot",
            "character_name",
            "render_style",
            "features_to_keep",
            "voting_session_id",
            "group_id",
            "mixed_characters_reason",
            "slot_label",
        ]
        read_only_fields = fields

    def get_voting_session_id(self, submission) -> int | None:
        return self.context["open_sessions"].get(submission.pk)

    def get_character_slot(self, submission) -> str:
        return slot_slug(submission)


# --- Votes ----------------------------------------------------------------------------------


class VoteResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    new_vote_count = serializers.IntegerField()


# --- Sessions -------------------------------------------------------------------------------


class SessionStartSerializer(serializers.Serializer):
    group_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="The character group the vote is for."
    )
    character_slot = serializers.SlugField(
        max_length=50,
        required=False,
        default="",
        allow_blank=True,
        help_text="Without group_id: a group's label as a slug, or a slot of designs from before identity.",
    )
    duration_hours = serializers.IntegerField(required=False, min_value=1, help_text="Defaults to the setting.")

    def validate_character_slot(self, value: str) -> str:
        return value.lower()

    def validate(self, attrs: dict) -> dict:
        if attrs.get("group_id") is None and not attrs.get("character_slot"):
            raise serializers.ValidationError({"group_id": "Name the character: group_id (or character_slot)."})
        return attrs


class SessionOverrideSerializer(serializers.Serializer):
    submission_id = serializers.IntegerField()
    reason = serializers.CharField(allow_blank=True, help_text="Kept with the result.")


class SessionCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class SessionSubmissionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    creator = serializers.CharField(help_text="The submitter's username.")
    style = serializers.CharField()  # type: ignore[assignment]  # a declared field; the stubs see Field's attribute
    votes = serializers.IntegerField()
    percentage = serializers.IntegerField(help_text="Share of the votes cast, rounded to a whole percent.")
    character_name = serializers.CharField()
    frame_ids = serializers.ListField(child=serializers.IntegerField())


class SessionStatusSerializer(serializers.Serializer):
    """The seed's getVotingStatus body (selectors.session_status), plus how the session ended."""

    session_id = serializers.IntegerField()
    story_id = serializers.IntegerField()
    character_slot = serializers.CharField(help_text=SLOT_HELP)
    group_id = serializers.IntegerField(allow_null=True, help_text="The character group the vote is for.")
    slot_label = serializers.CharField(help_text="The slot as people see it: the group's label.")
    status = serializers.ChoiceField(choices=VotingSession.Status.choices)
    total_votes = serializers.IntegerField()
    submissions = SessionSubmissionSerializer(many=True, help_text="Most votes first.")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    time_remaining = serializers.IntegerField(help_text="Milliseconds until the vote closes; 0 once it is not active.")
    winner_id = serializers.IntegerField(allow_null=True)
    decided_by = serializers.ChoiceField(choices=VotingSession.Decision.choices, allow_blank=True)
    decision_reason = serializers.CharField(allow_blank=True)
    runoff_of = serializers.IntegerField(allow_null=True, help_text="The session this runoff settles, if any.")
    win_threshold_percent = serializers.IntegerField(
        help_text="The share of the votes over which a submission wins (50 = a majority; an admin may lower it)."
    )
