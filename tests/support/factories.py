"""factory-boy factories for every app's models, for rows whose files do not matter to the test (no video
decoding, image fields are only names). They write rows directly: a test of a rule calls the service instead."""

from datetime import timedelta

import factory
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.utils import timezone

from characters.models import (
    Appearance,
    CandidateFrame,
    Character,
    CharacterGroup,
    Clip,
    Mark,
    PinAngle,
    PinnedCharacter,
    ReferenceImage,
    Story,
    StoryContributor,
)
from generation.models import GenerationJob, WebhookDelivery
from marketplace.models import CreditRequest, ExclusiveOffer, LedgerEntry, License, LicenseType, LicenseUse, Wallet
from voting.models import CharacterSubmission, SubmissionFrame, Vote, VotingSession


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pass-word-123")


def verify_email(username: str) -> EmailAddress:
    """Give the account a verified primary address, as its emailed link would: the site's log-in page requires one."""
    user = get_user_model().objects.get(username=username)
    if not user.email:
        user.email = f"{username}@example.com"
        user.save(update_fields=["email"])
    return EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )[0]


class StoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Story

    title = factory.Sequence(lambda n: f"Story {n}")
    slug = factory.Sequence(lambda n: f"story-{n}")
    created_by = factory.SubFactory(UserFactory)


class ClipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clip
        skip_postgeneration_save = True

    story = factory.SubFactory(StoryFactory)
    uploader = factory.SubFactory(UserFactory)
    video = factory.Sequence(lambda n: f"clips/test/{n}.mp4")
    status = Clip.Status.READY
    duration_seconds = 5.0
    fps = 30.0
    width = 1280
    height = 720

    @factory.post_generation
    def contributor(clip, create, extracted, **kwargs):
        """Uploading makes the uploader a contributor (characters.clips.services.clip_create does the same)."""
        if create:
            StoryContributor.objects.get_or_create(
                story=clip.story, user=clip.uploader, defaults={"first_contribution": "clip"}
            )


class CandidateFrameFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CandidateFrame

    clip = factory.SubFactory(ClipFactory)
    seconds = factory.Sequence(lambda n: float(n % 60))
    timestamp = factory.LazyAttribute(lambda f: f"00:{int(f.seconds):02d}")
    image = factory.Sequence(lambda n: f"frames/test/{n}.jpg")
    thumbnail = factory.Sequence(lambda n: f"frames/test/{n}_thumb.jpg")
    quality = 80


class CharacterFactory(factory.django.DjangoModelFactory):
    """A canonical character (no DNA files); pass allow_licensing=True to put it in the gallery."""

    class Meta:
        model = Character

    character_id = factory.Sequence(lambda n: f"character_{n}")
    name = factory.Sequence(lambda n: f"Character {n}")
    story = factory.SubFactory(StoryFactory)
    status = Character.Status.CANONICAL
    creator = factory.SubFactory(UserFactory)
    style_description = "A test character."
    locked_features = ["test feature"]


class PinnedCharacterFactory(factory.django.DjangoModelFactory):
    """A pin row whose image file is not written (`frontal_image` is just a name)."""

    class Meta:
        model = PinnedCharacter

    story = factory.SubFactory(StoryFactory)
    element_index = 1
    label = factory.Sequence(lambda n: f"Pinned {n}")
    frontal_image = factory.LazyAttribute(lambda p: f"pinned/{p.story.pk}/{p.element_index}_frontal.jpg")


class PinAngleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PinAngle

    pin = factory.SubFactory(PinnedCharacterFactory)
    position = factory.Sequence(lambda n: n % 6 + 1)
    image = factory.LazyAttribute(lambda a: f"pinned/{a.pin.story_id}/{a.pin.element_index}_angle_{a.position}.jpg")


class StoryContributorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StoryContributor

    story = factory.SubFactory(StoryFactory)
    user = factory.SubFactory(UserFactory)
    first_contribution = "clip"


class CharacterGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CharacterGroup

    story = factory.SubFactory(StoryFactory)
    number = factory.Sequence(lambda n: n + 1)
    label = factory.LazyAttribute(lambda g: f"Character {g.number}")


class MarkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Mark

    clip = factory.SubFactory(ClipFactory)
    created_by = factory.SubFactory(UserFactory)
    seconds = 1.0
    box = factory.LazyFunction(lambda: {"x": 100, "y": 80, "width": 200, "height": 240})


class AppearanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Appearance

    clip = factory.SubFactory(ClipFactory)
    group = factory.SubFactory(CharacterGroupFactory, story=factory.SelfAttribute("..clip.story"))
    shot_index = 0
    track_index = factory.Sequence(lambda n: n)
    start_seconds = 0.0
    end_seconds = 2.0


class ReferenceImageFactory(factory.django.DjangoModelFactory):
    """A reference image row; `image` is a name only (no file is written)."""

    class Meta:
        model = ReferenceImage

    character = factory.SubFactory(CharacterFactory)
    kind = ReferenceImage.Kind.FACE_CLOSEUP
    image = factory.LazyAttribute(lambda r: f"characters/{r.character.character_id}/{r.kind}.jpg")
    width = 512
    height = 512


# --- voting -----------------------------------------------------------------------------------------


class CharacterSubmissionFactory(factory.django.DjangoModelFactory):
    """A submission row without frames; voting.services.submission_create checks the rules, this does not."""

    class Meta:
        model = CharacterSubmission

    story = factory.SubFactory(StoryFactory)
    submitter = factory.SubFactory(UserFactory)
    style_description = factory.Sequence(lambda n: f"Design {n}: calm astronaut in an orange suit")
    character_name = factory.Sequence(lambda n: f"Hero {n}")


class SubmissionFrameFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubmissionFrame

    submission = factory.SubFactory(CharacterSubmissionFactory)
    frame = factory.SubFactory(CandidateFrameFactory, clip__story=factory.SelfAttribute("...submission.story"))
    position = factory.Sequence(lambda n: n % 10 + 1)


class VotingSessionFactory(factory.django.DjangoModelFactory):
    """An open session of the next 24 hours; pass `submissions=[...]` to put designs in it."""

    class Meta:
        model = VotingSession
        skip_postgeneration_save = True

    story = factory.SubFactory(StoryFactory)
    starts_at = factory.LazyFunction(timezone.now)
    ends_at = factory.LazyAttribute(lambda s: s.starts_at + timedelta(hours=24))

    @factory.post_generation
    def submissions(session, create, extracted, **kwargs):
        if create and extracted:
            session.submissions.set(extracted)


class VoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vote

    session = factory.SubFactory(VotingSessionFactory)
    submission = factory.SubFactory(CharacterSubmissionFactory, story=factory.SelfAttribute("..session.story"))
    voter = factory.SubFactory(UserFactory)


# --- generation -------------------------------------------------------------------------------------


class GenerationJobFactory(factory.django.DjangoModelFactory):
    """A job row of the offline provider, queued unless told otherwise (no provider is called)."""

    class Meta:
        model = GenerationJob

    story = factory.SubFactory(StoryFactory)
    requester = factory.SubFactory(UserFactory)
    mode = GenerationJob.Mode.TEXT_TO_VIDEO
    model_id = "offline"
    user_prompt = "A quiet walk along the pier"
    prompt_used = factory.LazyAttribute(lambda j: j.user_prompt)
    provider = "offline"


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    provider = "fal"
    request_id = factory.Sequence(lambda n: f"request-{n}")
    signature = factory.Sequence(lambda n: f"signature-{n}")


# --- marketplace ------------------------------------------------------------------------------------


class WalletFactory(factory.django.DjangoModelFactory):
    """A wallet row with no ledger behind its balance; marketplace.services.credits_grant keeps the two together."""

    class Meta:
        model = Wallet
        django_get_or_create = ("user",)

    user = factory.SubFactory(UserFactory)


class LedgerEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LedgerEntry

    wallet = factory.SubFactory(WalletFactory)
    kind = LedgerEntry.Kind.GRANT
    amount = 100
    balance_after = factory.LazyAttribute(lambda e: e.wallet.balance + e.amount)
    reason = "Test grant"


class LicenseFactory(factory.django.DjangoModelFactory):
    """An unlimited license row as a sale would leave it (paid = royalty + fee)."""

    class Meta:
        model = License

    character = factory.SubFactory(CharacterFactory, allow_licensing=True)
    licensee = factory.SubFactory(UserFactory)
    license_type = LicenseType.UNLIMITED
    credits_paid = 10
    royalty_percent = 30
    royalty_paid = 3
    platform_fee = 7


class LicenseUseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LicenseUse

    license = factory.SubFactory(LicenseFactory)
    job_ref = factory.Sequence(lambda n: f"job-{n}")


class ExclusiveOfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExclusiveOffer

    character = factory.SubFactory(CharacterFactory, allow_licensing=True)
    buyer = factory.SubFactory(UserFactory)
    credits = 500


class CreditRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditRequest

    user = factory.SubFactory(UserFactory)
    amount = 50
    reason = "Credits for a pilot episode"
