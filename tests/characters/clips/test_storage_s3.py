"""Media on S3: the same services with django-storages' S3 backend against moto's S3 server on loopback.

What is checked is what lands in the bucket (read back with boto3), not what our code says it wrote.
"""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.files import File
from django.core.files.base import ContentFile
from rest_framework.test import APIClient

from characters.clips import services
from characters.models import CandidateFrame, Clip
from characters.vision.video import local_video_copy
from tests.support.factories import StoryFactory, UserFactory

pytestmark = [pytest.mark.s3, pytest.mark.django_db]


def upload(path: Path, story, uploader, name: str | None = None) -> Clip:
    with open(path, "rb") as fh:
        return services.clip_create(story=story, uploader=uploader, upload=File(fh, name=name or path.name))


def object_bytes(bucket, key: str) -> bytes:
    return bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read()


def assert_presigned(url: str, bucket) -> None:
    parts = urlsplit(url)
    assert url.startswith(bucket.endpoint.endpoint_url + "/"), url
    query = parse_qs(parts.query)
    assert "X-Amz-Signature" in query and "X-Amz-Credential" in query, url
    assert query["X-Amz-Expires"] == ["3600"]


def test_upload_stores_the_video_in_the_bucket(s3_storage, good_clip, media_root):
    clip = upload(good_clip, StoryFactory(), UserFactory())

    assert s3_storage.keys() == [clip.video.name]
    assert clip.video.name.startswith(f"clips/{clip.story_id}/") and clip.video.name.endswith(".mp4")
    assert object_bytes(s3_storage, clip.video.name) == good_clip.read_bytes()
    assert not (media_root / clip.video.name).exists()


def test_extraction_reads_the_clip_from_the_bucket_and_stores_frames_there(
    s3_storage, good_clip, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the queued extraction runs (eager)
        clip = upload(good_clip, StoryFactory(), UserFactory())
    clip.refresh_from_db()

    assert clip.status == Clip.Status.READY, clip.error_message
    frames = list(clip.candidates.all())
    assert frames
    expected = {clip.video.name, clip.last_frame.name}
    expected |= {f.image.name for f in frames} | {f.thumbnail.name for f in frames}
    assert set(s3_storage.keys()) == expected
    for frame in frames:
        assert object_bytes(s3_storage, frame.image.name)[:3] == b"\xff\xd8\xff"  # a JPEG
        assert object_bytes(s3_storage, frame.thumbnail.name)[:3] == b"\xff\xd8\xff"
    assert object_bytes(s3_storage, clip.last_frame.name)[:3] == b"\xff\xd8\xff"


def test_local_copy_downloads_the_clip_and_is_temporary(s3_storage, good_clip):
    clip = upload(good_clip, StoryFactory(), UserFactory())

    path, is_temp = local_video_copy(clip.video)
    try:
        assert is_temp
        assert path.read_bytes() == good_clip.read_bytes()
    finally:
        path.unlink(missing_ok=True)


def test_re_extraction_replaces_the_frames_and_leaves_no_orphan_objects(
    s3_storage, mixed_clip, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        clip = upload(mixed_clip, StoryFactory(), UserFactory())
    first_keys = set(s3_storage.keys())

    services.clip_extract_frames(clip_id=clip.pk)
    clip.refresh_from_db()

    frames = CandidateFrame.objects.filter(clip=clip)
    current = {clip.video.name, clip.last_frame.name}
    current |= {f.image.name for f in frames} | {f.thumbnail.name for f in frames}
    assert set(s3_storage.keys()) == current
    assert len(first_keys) == len(current)


@pytest.mark.parametrize(
    "make_file",
    [
        pytest.param(lambda clips: ContentFile(b"not a video at all\n" * 50, name="notes.mp4"), id="text-as-mp4"),
        pytest.param(lambda clips: ContentFile(b"", name="empty.mp4"), id="zero-bytes"),
        pytest.param(lambda clips: File(open(clips["missing_header"], "rb"), name="cut.mp4"), id="missing-header"),  # noqa: SIM115
    ],
)
def test_refused_upload_leaves_no_object_and_no_row(s3_storage, missing_header_clip, make_file):
    upload_file = make_file({"missing_header": missing_header_clip})
    with pytest.raises(services.InvalidClip):
        services.clip_create(story=StoryFactory(), uploader=UserFactory(), upload=upload_file)
    upload_file.close()

    assert s3_storage.keys() == []
    assert not Clip.objects.exists()


def test_refused_api_upload_is_a_400_and_leaves_the_bucket_empty(s3_storage):
    story = StoryFactory()
    client = APIClient()
    client.force_authenticate(UserFactory())

    response = client.post(
        f"/api/v1/stories/{story.pk}/clips",
        {"video": ContentFile(b"GIF89a" + b"\0" * 2000, name="picture.mp4")},
        format="multipart",
    )

    assert response.status_code == 400, response.content
    assert response.json()["error"]["message"]
    assert s3_storage.keys() == []
    assert not Clip.objects.exists()


def test_urls_are_presigned_and_serve_the_bytes_with_ranges(s3_storage, good_clip, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        clip = upload(good_clip, StoryFactory(), UserFactory())
    clip.refresh_from_db()
    frame = clip.candidates.first()
    assert frame is not None

    for url in (clip.video.url, clip.last_frame.url, frame.image.url, frame.thumbnail.url):
        assert_presigned(url, s3_storage)

    whole = requests.get(clip.video.url, timeout=10)
    assert whole.status_code == 200 and whole.content == good_clip.read_bytes()
    # A <video> can seek a presigned URL: S3 answers byte ranges.
    part = requests.get(clip.video.url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert part.status_code == 206 and part.content == good_clip.read_bytes()[100:200]

    body = APIClient().get(f"/api/v1/clips/{clip.pk}").json()
    assert_presigned(body["video_url"], s3_storage)
    assert body["candidates"], body
    image = requests.get(body["candidates"][0]["image_url"], timeout=10)
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"
