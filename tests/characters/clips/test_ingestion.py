"""Clip ingestion: the services that take a file or a link, and the whole path from an API upload
through the real extraction pipeline (tasks run in-process) to the clip the pages poll."""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from characters.clips import services
from characters.models import Clip, Story
from common.safe_fetch import FetchTooLarge, UrlRefused
from demo import clips
from tests.support import servers
from tests.support.factories import UserFactory
from tests.support.media import files_under, own_media_root_for_every_test, own_temp_dir  # noqa: F401 -- fixtures
from tests.support.paths import SAMPLES

pytestmark = pytest.mark.django_db


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


def test_clip_create_stores_the_clip_and_queues_its_extraction(
    story, user, good_clip, media_root, temp_dir, django_capture_on_commit_callbacks
):
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


def test_a_link_to_a_broken_video_is_refused_like_an_upload(
    story, user, missing_header_clip, settings, media_root, temp_dir
):
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


def test_uploaded_clip_is_extracted_and_shows_its_candidates(
    api, story, good_clip, media_root, django_capture_on_commit_callbacks
):
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


# --- Formats: what ffmpeg reads is taken, and a copy browsers play is made ----------------------------


@pytest.fixture(scope="module")
def format_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("formats")


@pytest.fixture(scope="module")
def small_clip(format_dir):
    """3 s, 640x360 at 24 fps, the frontal astronaut: H.264 MP4, the source of the other formats."""
    return clips.good_frontal(format_dir / "small.mp4", size=(640, 360), seconds=3.0, fps=24)


@pytest.fixture(scope="module")
def webm_clip(format_dir, small_clip):
    return clips.webm_vp8(small_clip, format_dir / "small.webm")


def probe(path: Path):
    from characters.vision.video import probe_video

    return probe_video(path)


def test_an_avi_upload_is_kept_as_it_is_and_extracted_from_its_h264_copy(
    api, story, small_clip, format_dir, media_root, temp_dir, django_capture_on_commit_callbacks
):
    avi = clips.avi_mpeg4(small_clip, format_dir / "camera.avi")

    body = upload_and_extract(api, story, avi, django_capture_on_commit_callbacks)

    assert (body["status"], body["progress"]) == ("ready", 100), body["message"]
    assert (body["container"], body["codec"]) == ("avi", "mpeg4")
    assert body["candidates"], "extraction found no candidate in the playable copy"
    clip = Clip.objects.get(pk=body["id"])
    assert clip.video.name.endswith(".avi")
    assert (media_root / clip.video.name).read_bytes() == avi.read_bytes()  # the original, untouched
    playable = media_root / clip.playable_video.name
    assert playable != media_root / clip.video.name
    info = probe(playable)
    assert (info.container, info.codec, info.pix_fmt) == ("mp4", "h264", "yuv420p")
    assert (info.width, info.height, info.frame_count) == (640, 360, 72)
    served = api.get(urlsplit(body["playable_video_url"]).path)
    assert served.status_code == 200
    assert b"".join(served.streaming_content)[4:8] == b"ftyp"
    assert files_under(temp_dir) == []


@pytest.mark.parametrize(
    ("make", "name", "container", "codec"),
    [
        (clips.mkv_mjpeg, "scene.mkv", "mkv", "mjpeg"),
        (clips.mov_prores, "edit.mov", "mov", "prores"),
        (clips.webm_vp8, "screen.webm", "webm", "vp8"),
    ],
    ids=["mkv-mjpeg", "mov-prores", "webm-vp8"],
)
def test_other_containers_and_codecs_are_accepted(
    make, name, container, codec, story, user, small_clip, format_dir, media_root, temp_dir
):
    path = make(small_clip, format_dir / name)

    clip = services.clip_create(story=story, uploader=user, upload=upload(path))

    assert (clip.container, clip.codec, clip.width, clip.height) == (container, codec, 640, 360)
    assert clip.duration_seconds == pytest.approx(3.0, abs=0.05)
    assert clip.frame_count == 72
    assert clip.video.name.endswith(f".{container}")
    assert not clip.playable_video  # made by the extraction run
    assert files_under(media_root) == [media_root / clip.video.name]


def test_prores_clip_gets_a_playable_copy_with_progress(
    story, user, small_clip, format_dir, monkeypatch, django_capture_on_commit_callbacks
):
    path = clips.mov_prores(small_clip, format_dir / "progress.mov")
    with django_capture_on_commit_callbacks(execute=False):
        clip = services.clip_create(story=story, uploader=user, upload=upload(path))
    seen = []
    real = services._set_progress

    def record(clip_id, percent):
        seen.append(percent)
        real(clip_id, percent)

    monkeypatch.setattr(services, "_set_progress", record)

    clip = services.clip_extract_frames(clip_id=clip.pk)

    assert clip.status == Clip.Status.READY
    assert probe(Path(clip.playable_video.path)).codec == "h264"
    transcoding = [p for p in seen if p <= services.TRANSCODE_PROGRESS_SHARE]
    assert transcoding and max(transcoding) == services.TRANSCODE_PROGRESS_SHARE
    assert seen == sorted(seen) and seen[-1] > services.TRANSCODE_PROGRESS_SHARE
    # A re-run keeps the copy: nothing is encoded again.
    name = clip.playable_video.name
    assert services.clip_extract_frames(clip_id=clip.pk).playable_video.name == name


def test_an_h264_mp4_is_its_own_playable_copy(story, user, small_clip, media_root):
    clip = services.clip_create(story=story, uploader=user, upload=upload(small_clip))

    assert clip.playable_video.name == clip.video.name
    assert files_under(media_root) == [media_root / clip.video.name]


@pytest.fixture(scope="module")
def refused_files(format_dir, small_clip, webm_clip):
    text = format_dir / "notes.txt"
    text.write_text("Not a video, only words.\n")  # ffmpeg would render a .txt as a video of its text
    return {
        "audio only": (clips.audio_only(format_dir / "voice.m4a"), "no video stream"),
        "damaged": (clips.damaged_payload(small_clip, format_dir / "noise.mp4"), "damaged: no picture"),
        "text": (text, "not a video"),
    }


@pytest.mark.parametrize("case", ["audio only", "damaged", "text"])
def test_a_refused_file_names_the_reason_through_the_api(case, refused_files, api, story, media_root, temp_dir):
    path, words = refused_files[case]

    response = api.post(f"/api/v1/stories/{story.pk}/clips", {"video": upload(path)}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_clip"
    assert words in response.json()["error"]["message"]
    assert_nothing_kept(media_root, temp_dir)


def test_a_webm_whose_header_understates_its_length_is_refused(
    api, story, user, webm_clip, format_dir, settings, media_root, temp_dir
):
    settings.CLIP_MAX_SECONDS = 1
    lying = clips.webm_claiming_duration(webm_clip, format_dir / "lying.webm", claimed_seconds=0.5)

    response = api.post(f"/api/v1/stories/{story.pk}/clips", {"video": upload(lying)}, format="multipart")
    with pytest.raises(services.InvalidClip) as caught:
        services.clip_create(story=story, uploader=user, upload=upload(lying))

    assert response.status_code == 400
    # The scan stops a second past the limit: it knows "more than", not how much more.
    assert "Too long: the clip lasts more than 1 s, the limit is 1 s" in response.json()["error"]["message"]
    assert caught.value.status_code == 400 and "Too long" in caught.value.message
    assert_nothing_kept(media_root, temp_dir)


def test_a_webm_with_no_duration_in_its_header_is_measured(
    api, story, user, webm_clip, format_dir, settings, media_root, temp_dir
):
    unknown = clips.webm_without_duration(webm_clip, format_dir / "live.webm")

    accepted = api.post(f"/api/v1/stories/{story.pk}/clips", {"video": upload(unknown)}, format="multipart")
    settings.CLIP_MAX_SECONDS = 2
    refused = api.post(f"/api/v1/stories/{story.pk}/clips", {"video": upload(unknown)}, format="multipart")
    with pytest.raises(services.InvalidClip, match="Too long"):
        services.clip_create(story=story, uploader=user, upload=upload(unknown))

    assert accepted.status_code == 202, accepted.json()
    body = accepted.json()
    assert (body["duration"], body["container"]) == (pytest.approx(3.0, abs=0.05), "webm")
    assert Clip.objects.get(pk=body["id"]).frame_count == 72
    assert refused.status_code == 400
    assert "the limit is 2 s" in refused.json()["error"]["message"]
    assert Clip.objects.count() == 1  # only the accepted one
    assert files_under(temp_dir) == []
