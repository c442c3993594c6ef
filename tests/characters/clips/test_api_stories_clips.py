"""The stories and clips API, through DRF's test client against the real views and services.

Refused uploads must leave nothing behind: no Clip row, no file under MEDIA_ROOT, no temp file.
"""

import io
from pathlib import Path

import cv2
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.test import APIClient

from characters.models import CandidateFrame, Clip, Story
from demo import clips as test_clips
from tests.support import servers
from tests.support.factories import UserFactory
from tests.support.media import files_under, own_media_root_for_every_test, own_temp_dir  # noqa: F401 -- fixtures
from tests.support.paths import SAMPLES

pytestmark = pytest.mark.django_db


# --- Fixtures -------------------------------------------------------------------------------


@pytest.fixture
def user():
    return UserFactory(username="ada")


@pytest.fixture
def client(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def story(user):
    return Story.objects.create(title="The Long Night", slug="the-long-night", created_by=user)


def upload_url(story_id: int) -> str:
    return f"/api/v1/stories/{story_id}/clips"


def video_file(path: Path, name: str | None = None, content_type: str = "video/mp4") -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type=content_type)


def image_bytes(ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, test_clips.photo("astronaut"))
    assert ok
    return buf.tobytes()


def assert_nothing_kept(media_root: Path, temp_dir: Path) -> None:
    assert Clip.objects.count() == 0
    assert files_under(media_root) == []
    assert files_under(temp_dir) == []


# --- Stories --------------------------------------------------------------------------------


def test_create_story_returns_201_with_its_body(client, user):
    response = client.post("/api/v1/stories", {"title": "  Dust and Iron ", "description": "A knight."}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["title"] == "Dust and Iron"
    assert body["slug"] == "dust-and-iron"
    assert body["description"] == "A knight."
    assert body["created_by"] == "ada"
    assert body["contributors"] == []
    assert body["clips"] == []
    assert response["Location"] == f"http://testserver/api/v1/stories/{body['id']}"
    assert Story.objects.get(pk=body["id"]).created_by == user


def test_create_story_without_title_is_400(client):
    response = client.post("/api/v1/stories", {"description": "no title"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["message"] == "title: This field is required."
    assert Story.objects.count() == 0


def test_blank_title_gets_the_service_message(client):
    response = client.post("/api/v1/stories", {"title": "   "}, format="json")

    assert response.status_code == 400
    assert "title" in response.json()["error"]["message"]
    assert Story.objects.count() == 0


def test_anonymous_cannot_create_a_story():
    response = APIClient().post("/api/v1/stories", {"title": "X"}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert Story.objects.count() == 0


def test_story_detail_lists_contributors_and_clips(client, story, good_clip):
    other = UserFactory(username="grace")
    first = client.post(upload_url(story.pk), {"video": video_file(good_clip)}, format="multipart").json()
    other_client = APIClient()
    other_client.force_authenticate(other)
    second = other_client.post(upload_url(story.pk), {"video": video_file(good_clip)}, format="multipart").json()

    response = APIClient().get(f"/api/v1/stories/{story.pk}")  # reading needs no sign-in

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == story.pk
    assert body["created_by"] == "ada"
    assert body["contributors"] == ["ada", "grace"]
    assert [(c["id"], c["position"]) for c in body["clips"]] == [(first["id"], 1), (second["id"], 2)]
    assert body["clips"][0] == {
        "id": first["id"],
        "position": 1,
        "status": "uploaded",
        "progress": 0,
        "url": f"http://testserver/api/v1/clips/{first['id']}",
    }


def test_story_list_is_paginated_newest_first(client):
    for n in range(3):
        client.post("/api/v1/stories", {"title": f"Story {n}"}, format="json")

    response = client.get("/api/v1/stories", {"limit": 2})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [s["title"] for s in body["results"]] == ["Story 2", "Story 1"]
    assert body["next"].endswith("limit=2&page=2")


def test_unknown_story_is_404(client):
    response = client.get("/api/v1/stories/999")

    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "Story 999 does not exist.", "details": {}}


# --- Uploading a clip -----------------------------------------------------------------------


def test_upload_is_accepted_stored_and_says_where_to_follow_it(client, story, good_clip, media_root):
    response = client.post(upload_url(story.pk), {"video": video_file(good_clip)}, format="multipart")

    assert response.status_code == 202
    body = response.json()
    clip = Clip.objects.get(pk=body["id"])
    assert response["Location"] == body["status_url"] == f"http://testserver/api/v1/clips/{clip.pk}"
    assert body["story_id"] == story.pk
    assert body["position"] == 1
    assert body["status"] == "uploaded"
    assert body["message"] == "Waiting to start extracting frames."
    assert (body["width"], body["height"], body["codec"]) == (1280, 720, "h264")
    assert body["duration"] == pytest.approx(5.0, abs=0.1)
    assert body["fps"] == pytest.approx(30.0)
    assert body["candidates"] == []
    assert body["video_url"] == f"http://testserver/media/{clip.video.name}"
    assert clip.uploader.username == "ada"
    assert clip.original_filename == "good.mp4"
    stored = files_under(media_root)
    assert stored == [media_root / clip.video.name]
    assert stored[0].read_bytes() == good_clip.read_bytes()


def test_a_clip_whose_data_ends_early_is_still_accepted(client, story, truncated_tail_clip):
    response = client.post(upload_url(story.pk), {"video": video_file(truncated_tail_clip)}, format="multipart")

    assert response.status_code == 202
    assert Clip.objects.count() == 1


def _oversized(settings, path):
    settings.CLIP_MAX_BYTES = path.stat().st_size - 1  # just over: the service measures and refuses
    return video_file(path)


def _far_oversized(settings, path):
    settings.CLIP_MAX_BYTES = 1000  # far over: refused from Content-Length before the body is read
    return video_file(path)


def _too_long(settings, path):
    settings.CLIP_MAX_SECONDS = 2
    return video_file(path)


def _too_large_picture(settings, path):
    settings.CLIP_MAX_WIDTH, settings.CLIP_MAX_HEIGHT = 640, 360
    return video_file(path)


BAD_UPLOADS = {
    "zero bytes": (lambda s, p: SimpleUploadedFile("empty.mp4", b"", "video/mp4"), 400, "empty"),
    "text named .mp4": (
        lambda s, p: SimpleUploadedFile("notes.mp4", b"this is not a video at all\n", "video/mp4"),
        400,
        "not a video",
    ),
    "png named .mp4": (
        lambda s, p: SimpleUploadedFile("photo.mp4", image_bytes(".png"), "video/mp4"),
        400,
        "not a video",
    ),
    "jpeg named .mp4": (
        lambda s, p: SimpleUploadedFile("photo.mp4", image_bytes(".jpg"), "image/jpeg"),
        400,
        "not a video",
    ),
    "oversized": (_oversized, 413, "limit for a clip"),
    "far oversized": (_far_oversized, 413, "limit for a clip"),
    "too long": (_too_long, 400, "at most 2 s"),
    "too large a picture": (_too_large_picture, 400, "1280x720"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=list(BAD_UPLOADS))
def test_bad_file_is_refused_and_nothing_is_kept(case, client, story, good_clip, settings, media_root, temp_dir):
    make, expected_status, words = BAD_UPLOADS[case]

    response = client.post(upload_url(story.pk), {"video": make(settings, good_clip)}, format="multipart")

    assert response.status_code == expected_status
    error = response.json()["error"]
    assert error["code"] == "invalid_clip"
    assert words in error["message"]
    assert_nothing_kept(media_root, temp_dir)


def test_file_cut_before_its_header_is_refused(client, story, missing_header_clip, media_root, temp_dir):
    response = client.post(upload_url(story.pk), {"video": video_file(missing_header_clip)}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_clip"
    assert "could not be read as a video" in response.json()["error"]["message"]
    assert_nothing_kept(media_root, temp_dir)


@pytest.mark.samples
@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples is not here")
@pytest.mark.parametrize("name", ["bad_empty.mp4", "bad_not_video.mp4", "bad_truncated.mp4"])
def test_broken_sample_files_are_refused(name, client, story, media_root, temp_dir):
    response = client.post(upload_url(story.pk), {"video": video_file(SAMPLES / name)}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_clip"
    assert response.json()["error"]["message"]
    assert_nothing_kept(media_root, temp_dir)


def test_missing_video_field_is_400(client, story, media_root, temp_dir):
    response = client.post(upload_url(story.pk), {"title": "no file"}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "`video` file" in response.json()["error"]["message"]
    assert_nothing_kept(media_root, temp_dir)


def test_both_file_and_link_is_400(client, story, good_clip, media_root, temp_dir):
    response = client.post(
        upload_url(story.pk),
        {"video": video_file(good_clip), "source_url": "https://example.com/a.mp4"},
        format="multipart",
    )

    assert response.status_code == 400
    assert "not both" in response.json()["error"]["message"]
    assert_nothing_kept(media_root, temp_dir)


def test_wrong_request_content_type_is_415(client, story, good_clip, media_root, temp_dir):
    response = client.post(upload_url(story.pk), good_clip.read_bytes(), content_type="video/mp4")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert 'Unsupported media type "video/mp4"' in response.json()["error"]["message"]
    assert_nothing_kept(media_root, temp_dir)


def test_upload_to_unknown_story_is_404(client, good_clip, media_root, temp_dir):
    response = client.post(upload_url(999), {"video": video_file(good_clip)}, format="multipart")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Story 999 does not exist."
    assert_nothing_kept(media_root, temp_dir)


def test_anonymous_upload_is_401(story, good_clip, media_root, temp_dir):
    response = APIClient().post(upload_url(story.pk), {"video": video_file(good_clip)}, format="multipart")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert_nothing_kept(media_root, temp_dir)


def test_uploads_have_their_own_rate_limit(client, story, good_clip, settings):
    from django.core.cache import cache

    cache.clear()
    settings.CLIP_UPLOAD_RATE = "2/hour"
    statuses = [
        client.post(upload_url(story.pk), {"video": video_file(good_clip)}, format="multipart").status_code
        for _ in range(3)
    ]
    # Reading is not an upload: still allowed.
    still_reading = client.get(f"/api/v1/stories/{story.pk}").status_code
    cache.clear()

    assert statuses == [202, 202, 429]
    assert still_reading == 200
    assert Clip.objects.count() == 2


# --- Uploading by link ----------------------------------------------------------------------


def test_upload_by_link_fetches_the_clip(client, story, good_clip, settings, media_root, temp_dir):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with servers.serve({"/clips/take-1.mp4": servers.file_route(good_clip.read_bytes())}) as server:
        url = server.url("/clips/take-1.mp4")
        response = client.post(upload_url(story.pk), {"source_url": url}, format="json")

    assert response.status_code == 202
    clip = Clip.objects.get(pk=response.json()["id"])
    assert clip.source_url == url
    assert response.json()["source_url"] == url
    assert clip.original_filename == "take-1.mp4"
    assert (media_root / clip.video.name).read_bytes() == good_clip.read_bytes()
    assert files_under(temp_dir) == []


def test_upload_by_link_as_a_form_field(client, story, good_clip, settings):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with servers.serve({"/a.mp4": servers.file_route(good_clip.read_bytes())}) as server:
        response = client.post(upload_url(story.pk), {"source_url": server.url("/a.mp4")}, format="multipart")

    assert response.status_code == 202


def test_link_to_a_loopback_host_is_refused(client, story, good_clip, media_root, temp_dir):
    with servers.serve({"/a.mp4": servers.file_route(good_clip.read_bytes())}) as server:
        response = client.post(upload_url(story.pk), {"source_url": server.url("/a.mp4")}, format="json")
        requests_seen = list(server.requests)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_refused"
    assert "loopback" in response.json()["error"]["message"]
    assert requests_seen == []
    assert_nothing_kept(media_root, temp_dir)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/clip.mp4", "not a url"])
def test_link_with_another_scheme_is_refused(url, client, story, media_root, temp_dir):
    response = client.post(upload_url(story.pk), {"source_url": url}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_refused"
    assert_nothing_kept(media_root, temp_dir)


def test_link_to_a_file_that_is_not_a_video_is_refused(client, story, settings, media_root, temp_dir):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    body = image_bytes(".png")
    with servers.serve({"/a.mp4": servers.file_route(body, content_type="application/octet-stream")}) as server:
        response = client.post(upload_url(story.pk), {"source_url": server.url("/a.mp4")}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_clip"
    assert "not a video" in response.json()["error"]["message"]
    assert_nothing_kept(media_root, temp_dir)


def test_link_to_an_oversized_file_is_413(client, story, good_clip, settings, media_root, temp_dir):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.CLIP_MAX_BYTES = 10_000
    with servers.serve({"/a.mp4": servers.file_route(good_clip.read_bytes(), send_length=False)}) as server:
        response = client.post(upload_url(story.pk), {"source_url": server.url("/a.mp4")}, format="json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "url_too_large"
    assert_nothing_kept(media_root, temp_dir)


# --- Reading a clip -------------------------------------------------------------------------


def _jpeg() -> ContentFile:
    return ContentFile(image_bytes(".jpg"))


@pytest.fixture
def ready_clip(story, user, media_root):
    clip = Clip(
        story=story,
        uploader=user,
        position=1,
        status=Clip.Status.READY,
        progress=100,
        duration_seconds=5.0,
        fps=30.0,
        width=1280,
        height=720,
        codec="h264",
        frames_analysed=5,
        people_found=True,
        warning_message="",
    )
    clip.video.save("clip.mp4", ContentFile(b"not decoded in this test"), save=False)
    clip.save()
    clip.last_frame.save("last_frame.jpg", _jpeg())
    for rank, (seconds, quality) in enumerate([(2.4, 94), (0.0, 71)], start=1):
        frame = CandidateFrame(
            clip=clip,
            seconds=seconds,
            timestamp=f"00:{int(seconds):02d}",
            rank=rank,
            quality=quality,
            sharpness_score=0.9,
            lighting_score=0.8,
            face_score=0.95,
            composition_score=0.7,
            dominant=quality > 90,
            pose="frontal",
            full_body=False,
            width=1280,
            height=720,
            detections=[{"box": {"x": 500, "y": 100, "width": 200, "height": 240}, "confidence": 0.93}],
        )
        frame.image.save(f"{rank}.jpg", _jpeg(), save=False)
        frame.thumbnail.save(f"{rank}_thumb.jpg", _jpeg(), save=False)
        frame.save()
    return clip


def test_clip_detail_has_status_and_the_seed_frame_fields(ready_clip):
    response = APIClient().get(f"/api/v1/clips/{ready_clip.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == ready_clip.pk
    assert body["story_id"] == ready_clip.story_id
    assert (body["status"], body["progress"]) == ("ready", 100)
    assert body["message"] == "2 candidate frames found."
    assert body["frames_analysed"] == 5
    assert body["people_found"] is True
    assert body["error_message"] == body["warning_message"] == ""
    assert body["last_frame_url"] == f"http://testserver/media/{ready_clip.last_frame.name}"
    assert [c["quality"] for c in body["candidates"]] == [94, 71]
    best = body["candidates"][0]
    frame = ready_clip.candidates.get(rank=1)
    assert best["id"] == frame.pk and isinstance(best["id"], int)
    assert best["clip_id"] == ready_clip.pk
    assert (best["timestamp"], best["seconds"]) == ("00:02", 2.4)
    assert (best["dominant"], best["pose"], best["full_body"]) == (True, "frontal", False)
    assert best["detections"][0]["confidence"] == 0.93
    assert best["image_url"] == f"http://testserver/media/{frame.image.name}"
    assert best["thumbnail_url"] == f"http://testserver/media/{frame.thumbnail.name}"
    for key in ("sharpness_score", "lighting_score", "face_score", "composition_score"):
        assert key in best


def test_media_urls_already_absolute_are_given_as_they_are(ready_clip, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"base_url": "https://cdn.example.test/media/"},
        },
    }

    body = APIClient().get(f"/api/v1/clips/{ready_clip.pk}").json()

    assert body["video_url"] == f"https://cdn.example.test/media/{ready_clip.video.name}"
    assert body["candidates"][0]["image_url"].startswith("https://cdn.example.test/media/frames/")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": Clip.Status.UPLOADED, "progress": 0}, "Waiting to start extracting frames."),
        (
            {"status": Clip.Status.EXTRACTING, "progress": 40, "playable_video": "clips/1/copy.playable.mp4"},
            "Extracting frames: 40 %",
        ),
        (
            {"status": Clip.Status.EXTRACTING, "progress": 20, "playable_video": ""},
            "Converting the video to a copy every browser plays: 20 %",
        ),
        ({"status": Clip.Status.READY, "progress": 100, "people_found": False}, "No person was found in this clip."),
        (
            {"status": Clip.Status.FAILED, "error_message": "The video stream ended unexpectedly."},
            "The video stream ended unexpectedly.",
        ),
        (
            {"status": Clip.Status.READY, "warning_message": "The file ends at 3.0 s; its header says 5.0 s."},
            "2 candidate frames found. The file ends at 3.0 s; its header says 5.0 s.",
        ),
    ],
)
def test_clip_message_says_what_is_happening(fields, message, ready_clip):
    Clip.objects.filter(pk=ready_clip.pk).update(**fields)

    body = APIClient().get(f"/api/v1/clips/{ready_clip.pk}").json()

    assert body["message"] == message
    assert body["status"] == fields["status"]


def test_unknown_clip_is_404(client):
    response = client.get("/api/v1/clips/424242")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Clip 424242 does not exist."


def test_session_signed_in_page_can_poll_a_clip(ready_clip, user):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)

    response = browser.get(f"/api/v1/clips/{ready_clip.pk}")

    assert response.status_code == 200
    assert response.json()["status"] == "ready"


# --- Re-extracting --------------------------------------------------------------------------


@pytest.fixture
def someone_elses_clip(story, ready_clip):
    uploader = UserFactory(username="uploader")
    Clip.objects.filter(pk=ready_clip.pk).update(uploader=uploader)
    ready_clip.refresh_from_db()
    return ready_clip


@pytest.mark.parametrize("who", ["story creator", "uploader", "staff"])
def test_re_extract_is_accepted_for_those_allowed(who, someone_elses_clip):
    user = {
        "story creator": someone_elses_clip.story.created_by,
        "uploader": someone_elses_clip.uploader,
        "staff": UserFactory(username="admin", is_staff=True),
    }[who]
    api = APIClient()
    api.force_authenticate(user)

    response = api.post(f"/api/v1/clips/{someone_elses_clip.pk}/extract")

    assert response.status_code == 202
    assert response["Location"] == f"http://testserver/api/v1/clips/{someone_elses_clip.pk}"
    assert (response.json()["status"], response.json()["progress"]) == ("uploaded", 0)
    someone_elses_clip.refresh_from_db()
    assert someone_elses_clip.status == Clip.Status.UPLOADED


def test_re_extract_by_anyone_else_is_403(someone_elses_clip):
    api = APIClient()
    api.force_authenticate(UserFactory(username="stranger"))

    response = api.post(f"/api/v1/clips/{someone_elses_clip.pk}/extract")

    assert response.status_code == 403
    assert "creator" in response.json()["error"]["message"]
    someone_elses_clip.refresh_from_db()
    assert someone_elses_clip.status == Clip.Status.READY


def test_re_extract_anonymous_is_401_and_unknown_clip_is_404(someone_elses_clip, client):
    assert APIClient().post(f"/api/v1/clips/{someone_elses_clip.pk}/extract").status_code == 401
    assert client.post("/api/v1/clips/424242/extract").status_code == 404


# --- Schema ---------------------------------------------------------------------------------


def test_schema_is_served_and_valid_without_warnings(tmp_path):
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/stories",
        "/api/v1/stories/{story_id}",
        "/api/v1/stories/{story_id}/clips",
        "/api/v1/clips/{clip_id}",
        "/api/v1/clips/{clip_id}/extract",
        "/api/v1/auth/token",
    ):
        assert path in paths
    assert "multipart/form-data" in paths["/api/v1/stories/{story_id}/clips"]["post"]["requestBody"]["content"]

    out = io.StringIO()
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"), stdout=out, stderr=out
    )
    assert (tmp_path / "schema.yml").stat().st_size > 0


def test_re_extract_while_a_run_is_queued_is_409(someone_elses_clip):
    api = APIClient()
    api.force_authenticate(someone_elses_clip.uploader)
    assert api.post(f"/api/v1/clips/{someone_elses_clip.pk}/extract").status_code == 202

    again = api.post(f"/api/v1/clips/{someone_elses_clip.pk}/extract")

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "extraction_in_progress"
