"""Pins on S3 (django-storages against moto's S3 server): exact keys, no renaming, files go with the pin,
and a scrubbed clip is downloaded once for decoding. What is checked is what is in the bucket."""

import pytest

from characters.clips import services
from characters.pins import frames as pin_frames
from characters.pins import services as pin_services
from tests.support.pinning import upload_clip

pytestmark = [pytest.mark.s3, pytest.mark.django_db]


def keys_under(bucket, prefix: str) -> list[str]:
    all_keys = bucket.keys()
    return [key for key in all_keys if key.startswith(prefix)]


def object_bytes(bucket, key: str) -> bytes:
    return bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read()


def test_pin_images_on_s3(s3_storage, good_clip, django_user_model):
    admin = django_user_model.objects.create_superuser("s3pinner", "s3@example.com", "pw-s3-12345")
    story = services.story_create(title="Cloud Story", created_by=admin)
    clip = upload_clip(good_clip, story, admin)
    prefix = f"pinned/{story.pk}/"
    # A leftover object where the next pin goes: the S3 backend never overwrites (AWS_S3_FILE_OVERWRITE=False),
    # so without care the pin would be stored under another, random name.
    s3_storage.client.put_object(Bucket=s3_storage.name, Key=f"{prefix}1_frontal.jpg", Body=b"stale")

    pin = pin_services.pin_create(story=story, source_clip=clip, element_index=1, frame_timestamp=1.0, user=admin)

    assert keys_under(s3_storage, prefix) == [f"{prefix}1_frontal.jpg"] == [pin.frontal_image.name]
    assert (
        object_bytes(s3_storage, pin.frontal_image.name)
        == pin_frames.pin_frame_for(clip=clip, frame_timestamp=1.0).jpeg
    )

    # Later frames of the same clip come from the local copy made for the first one.
    s3_storage.client.delete_object(Bucket=s3_storage.name, Key=clip.video.name)
    angle = pin_services.pin_add_angle(pin=pin, source_clip=clip, frame_timestamp=2.0, user=admin)
    assert angle.image.name == f"{prefix}1_angle_1.jpg"
    assert object_bytes(s3_storage, angle.image.name)[:2] == b"\xff\xd8"

    pin_services.pin_delete(pin=pin, user=admin)
    assert keys_under(s3_storage, prefix) == []
