"""factory-boy factories for rows whose files do not matter to the test (no video decoding)."""

import factory
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

from characters.models import CandidateFrame, Character, Clip, Story, StoryContributor


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
        model = "characters.PinnedCharacter"

    story = factory.SubFactory(StoryFactory)
    element_index = 1
    label = factory.Sequence(lambda n: f"Pinned {n}")
    frontal_image = factory.LazyAttribute(lambda p: f"pinned/{p.story.pk}/{p.element_index}_frontal.jpg")
