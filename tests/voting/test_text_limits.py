"""The name, description, feature and label limits are read from their one home (the model field or the DNA's
feature rule) by every form and API serializer that checks them: none carries its own number."""

from characters.dna.images import MAX_FEATURE_CHARS, MAX_LOCKED_FEATURES
from characters.models import PinnedCharacter
from characters.pins.admin import PinActionForm
from characters.pins.api.serializers import PinCreateSerializer, PinPatchSerializer
from voting.api.lock import LockRequestSerializer
from voting.api.serializers import SubmissionCreateSerializer
from voting.forms import SubmissionForm
from voting.models import CharacterSubmission


def test_the_limits_come_from_their_one_home():
    name_max = CharacterSubmission._meta.get_field("character_name").max_length
    assert LockRequestSerializer().fields["character_name"].max_length == name_max

    features = SubmissionCreateSerializer().fields["features_to_keep"]
    assert (features.max_length, features.child.max_length) == (MAX_LOCKED_FEATURES, MAX_FEATURE_CHARS)
    assert f"up to {MAX_LOCKED_FEATURES}, each up to {MAX_FEATURE_CHARS} characters" in str(
        SubmissionForm.base_fields["features_to_keep"].help_text
    )

    label_max = PinnedCharacter._meta.get_field("label").max_length
    assert PinCreateSerializer().fields["label"].max_length == label_max
    assert PinPatchSerializer().fields["label"].max_length == label_max
    assert PinActionForm.base_fields["label"].max_length == label_max
