"""Clip ingestion: the services that take a file or a link, and the whole path from an API upload
through the real extraction pipeline (tasks run in-process) to the clip the pages poll."""
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from characters.clips import services
from characters.models import Clip, Story
from common.safe_fetch import FetchTooLarge, UrlRefused
from tests.factories import UserFactory
from tests.support import servers

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture(autouse=True)
def temp_dir(tmp_path, monkeypatch):
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def files_under(root: Path) -> list[Path]:
    return [Path(dirpath) / name for dirpath, _, names in os.walk(root) for name in names]


@pytest.fixture
def user():
    return UserFactory(username="ada")


@pytest.fixture
def story(user):
    return Story.objects.create(title="The Long Night", slug="the-long-night", created_by=user)


def upload(path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type="video/mp4")


def assert_nothing_kept(media_root: Path, temp_dir: Path) -> None:
    assert Clip.objects.count() == 0
    assert files_under(media_root) == []
    assert files_under(temp_dir) == []


# --- clip_create ----------------------------------------------------------------------------


def test_clip_create_stores_the_clip_and_queues_its_extraction(story, user, good_clip, media_root,
                                                              temp_dir, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        clip = services.clip_create(story=story, uploader=user, upload=upload(good_clip))

    assert len(queued) == 1  # the extraction, sent once the row is committed
    clip.refresh_from_db()
    assert (clip.status, clip.progress, clip.position) == (Clip.Status.UPLOADED, 0, 1)
    assert (clip.width, clip.height, clip.container, clip.codec) == (1280, 720, "mp4", "h264")
    assert clip.duration_seconds == pytest.approx(5.0, abs=0.1)
    assert clip.size_bytes == good_clip.stat().st_size
    assert files_under(media_root) == [media_root / clip.video.name]
    assert files_under(temp_dir) == []


def test_clips_are_numbered_in_upload_order(story, user, good_clip, no_person_clip):
    first = services.clip_create(story=story, uploader=user, upload=upload(good_clip))
    second = services.clip_create(story=story, uploader=UserFactory(), upload=upload(no_person_clip))

    assert (first.position, second.position) == (1, 2)


@pytest.mark.samples
@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples is not here")
@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("bad_empty.mp4", "empty"),
        ("bad_not_video.mp4", "not a video"),
        ("bad_truncated.mp4", "could not be read as a video"),
    ],
)
def test_broken_sample_files_are_refused(name, words, story, user, media_root, temp_dir):
    with pytest.raises(services.InvalidClip) as caught:
        services.clip_create(story=story, uploader=user, upload=upload(SAMPLES / name))

    assert caught.value.status_code == 400
    assert words in caught.value.message
    assert_nothing_kept(media_root, temp_dir)


def test_file_cut_before_its_header_is_refused(story, user, missing_header_clip, media_root, temp_dir):
    with pytest.raises(services.InvalidClip, match="could not be read as a video"):
        services.clip_create(story=story, uploader=user, upload=upload(missing_header_clip))

    assert_nothing_kept(media_root, temp_dir)


# --- clip_create_from_url -------------------------------------------------------------------


def test_clip_from_a_link_is_fetched_and_stored(story, user, good_clip, settings, media_root, temp_dir):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with servers.serve({"/media/hero.mp4": servers.file_route(good_clip.read_bytes())}) as server:
        clip = services.clip_create_from_url(story=story, uploader=user, url=server.url("/media/hero.mp4"))

    assert clip.source_url == server.url("/media/hero.mp4")
    assert clip.original_filename == "hero.mp4"
    assert (clip.width, clip.height) == (1280, 720)
    assert (media_root / clip.video.name).read_bytes() == good_clip.read_bytes()
    assert files_under(temp_dir) == []  # the fetched copy is gone too


def test_clip_from_a_refused_link_keeps_nothing(story, user, good_clip, media_root, temp_dir):
    with servers.serve({"/a.mp4": servers.file_route(good_clip.read_bytes())}) as server:
        with pytest.raises(UrlRefused):
            services.clip_create_from_url(story=story, uploader=user, url=server.url("/a.mp4"))
        assert server.requests == []

    assert_nothing_kept(media_root, temp_dir)


def test_clip_from_a_link_obeys_the_clip_size_limit(story, user, good_clip, settings, media_root, temp_dir):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.CLIP_MAX_BYTES = good_clip.stat().st_size - 1
    route = servers.file_route(good_clip.read_bytes())
    with servers.serve({"/a.mp4": route}) as server, pytest.raises(FetchTooLarge):
        services.clip_create_from_url(story=story, uploader=user, url=server.url("/a.mp4"))

    assert_nothing_kept(media_root, temp_dir)


def test_a_link_to_a_broken_video_is_refused_like_an_upload(story, user, missing_header_clip, settings,
                                                            media_root, temp_dir):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    route = servers.file_route(missing_header_clip.read_bytes())
    with servers.serve({"/a.mp4": route}) as server, pytest.raises(services.InvalidClip):
        services.clip_create_from_url(story=story, uploader=user, url=server.url("/a.mp4"))

    assert_nothing_kept(media_root, temp_dir)


# --- Upload -> extraction -> what the page polls --------------------------------------------


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def upload_and_extract(api, story, path: Path, django_capture_on_commit_callbacks) -> dict:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/stories/{story.pk}/clips", {"video": upload(path)}, format="multipart")
    assert response.status_code == 202, response.json()
    return api.get(urlsplit(response["Location"]).path).json()


def test_uploaded_clip_is_extracted_and_shows_its_candidates(api, story, good_clip, media_root,
                                                             django_capture_on_commit_callbacks):
    body = upload_and_extract(api, story, good_clip, django_capture_on_commit_callbacks)

    assert (body["status"], body["progress"]) == ("ready", 100)
    assert body["people_found"] is True
    assert body["frames_analysed"] >= 4
    assert body["message"] == f"{len(body['candidates'])} candidate frames found."
    assert 1 <= len(body["candidates"]) <= 10
    qualities = [frame["quality"] for frame in body["candidates"]]
    assert qualities == sorted(qualities, reverse=True)
    frame = body["candidates"][0]
    assert isinstance(frame["id"], int)
    assert frame["clip_id"] == body["id"]
    assert frame["timestamp"].count(":") == 1 and len(frame["timestamp"]) == 5
    assert frame["pose"] in ("frontal", "left", "right")
    assert frame["detections"]
    # The URLs are absolute and really serve the images.
    for url in (frame["image_url"], frame["thumbnail_url"], body["last_frame_url"]):
        assert url.startswith("http://testserver/media/")
        served = api.get(urlsplit(url).path)
        assert served.status_code == 200
        assert b"".join(served.streaming_content)[:3] == b"\xff\xd8\xff"  # JPEG


def test_clip_with_no_person_ends_ready_and_says_so(api, story, no_person_clip, django_capture_on_commit_callbacks):
    body = upload_and_extract(api, story, no_person_clip, django_capture_on_commit_callbacks)

    assert body["status"] == "ready"
    assert body["people_found"] is False
    assert body["candidates"] == []
    assert body["message"] == "No person was found in this clip."


def test_re_extracting_replaces_the_candidates(api, story, good_clip, media_root, django_capture_on_commit_callbacks):
    before = upload_and_extract(api, story, good_clip, django_capture_on_commit_callbacks)
    old_files = {urlsplit(f["image_url"]).path for f in before["candidates"]}

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/clips/{before['id']}/extract")
    after = api.get(f"/api/v1/clips/{before['id']}").json()

    assert response.status_code == 202
    assert after["status"] == "ready"
    assert len(after["candidates"]) == len(before["candidates"])
    assert {f["id"] for f in after["candidates"]}.isdisjoint({f["id"] for f in before["candidates"]})
    stored = {f"/media/{path.relative_to(media_root).as_posix()}" for path in files_under(media_root)}
    assert {urlsplit(f["image_url"]).path for f in after["candidates"]} <= stored
    assert old_files.isdisjoint(stored)  # the old frames' files are gone
