"""Server-rendered pages: home, login/logout, story page with its upload form, clip page."""

import re
from pathlib import Path

import cv2
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from characters.clips import services
from characters.models import CandidateFrame, Clip, Story, format_timestamp
from demo import clips
from tests.support.factories import verify_email
from tests.support.media import own_media_root_for_every_test  # noqa: F401 -- fixture

pytestmark = pytest.mark.django_db


# --- Helpers: rows shaped like the pipeline's output, with real JPEG files -------------------
def jpeg_bytes(width: int = 320, height: int = 200) -> bytes:
    image = cv2.resize(clips.photo("astronaut")[20:340, 80:592], (width, height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def make_clip(story, uploader, *, position=1, status=Clip.Status.READY, **fields) -> Clip:
    defaults = {
        "duration_seconds": 10.0,
        "fps": 30.0,
        "frame_count": 300,
        "width": 1280,
        "height": 720,
        "codec": "h264",
        "container": "mp4",
        "size_bytes": 3_400_000,
        "frames_analysed": 10,
        "original_filename": f"scene-{position}.mp4",
    }
    defaults.update(fields)
    clip = Clip.objects.create(
        story=story,
        uploader=uploader,
        video=f"clips/{story.pk}/scene-{position}.mp4",
        position=position,
        status=status,
        **defaults,
    )
    services.story_add_contributor(story=story, user=uploader, contribution="clip")  # as clip_create does
    return clip


def make_frame(clip, *, seconds, quality, rank=1, **fields) -> CandidateFrame:
    frame = CandidateFrame(
        clip=clip,
        seconds=seconds,
        timestamp=format_timestamp(seconds),
        quality=quality,
        rank=rank,
        width=1280,
        height=720,
        **fields,
    )
    stem = f"{int(seconds * 1000):07d}ms"
    frame.image.save(f"{stem}.jpg", ContentFile(jpeg_bytes(1280, 720)), save=False)
    frame.thumbnail.save(f"{stem}_thumb.jpg", ContentFile(jpeg_bytes()), save=False)
    frame.save()
    return frame


@pytest.fixture
def author(django_user_model):
    return django_user_model.objects.create_user("ada", password="pw-ada-123")


@pytest.fixture
def author_client(client, author):
    client.force_login(author)
    return client


@pytest.fixture
def story(author):
    return services.story_create(title="The Astronaut", description="Drifting between stations.", created_by=author)


def stored_files(root: Path, folder: str) -> list[Path]:
    base = root / folder
    return [p for p in base.rglob("*") if p.is_file()] if base.exists() else []


# --- Home, login, logout ----------------------------------------------------------------------
def test_home_lists_stories_as_cards_with_clip_count_and_best_frame(client, story, author):
    clip = make_clip(story, author)
    make_frame(clip, seconds=1, quality=60, rank=2)
    best = make_frame(clip, seconds=3, quality=93, rank=1, dominant=True)
    make_clip(story, author, position=2, status=Clip.Status.EXTRACTING)
    services.story_create(title="Empty Harbour", created_by=author)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "The Astronaut" in html and "Empty Harbour" in html
    assert "2 clips" in html and "0 clips" in html
    assert best.thumbnail.url in html  # the cover is the best frame of the story
    assert html.count("story-card__cover") == 2
    assert story.get_absolute_url() in html


def test_home_offers_new_story_form_only_to_signed_in_users(client, author):
    anonymous = client.get(reverse("home")).content.decode()
    assert 'action="/stories/new/"' not in anonymous
    assert reverse("login") in anonymous

    client.force_login(author)
    signed_in = client.get(reverse("home")).content.decode()
    assert 'action="/stories/new/"' in signed_in
    assert 'name="csrfmiddlewaretoken"' in signed_in


def test_nav_has_stories_api_docs_and_admin_only_for_staff(client, author, django_user_model):
    client.force_login(author)
    html = client.get(reverse("home")).content.decode()
    assert 'href="/api/v1/docs/"' in html
    assert 'href="/admin/"' not in html
    staff = django_user_model.objects.create_user("root", password="pw", is_staff=True)
    client.force_login(staff)
    assert 'href="/admin/"' in client.get(reverse("home")).content.decode()


def test_new_story_form_creates_the_story_and_redirects_to_it(author_client, author):
    response = author_client.post(reverse("story-create"), {"title": "  Lighthouse  ", "description": "Storm."})
    story = Story.objects.get()
    assert response.status_code == 302
    assert response["Location"] == story.get_absolute_url()
    assert (story.title, story.slug, story.created_by) == ("Lighthouse", "lighthouse", author)
    page = author_client.get(response["Location"]).content.decode()
    assert "Lighthouse" in page and "created" in page  # the success message


def test_new_story_without_title_shows_the_error_and_creates_nothing(author_client):
    response = author_client.post(reverse("story-create"), {"title": "   ", "description": "x"})
    assert response.status_code == 400
    assert "field__error" in response.content.decode()
    assert not Story.objects.exists()


def test_anonymous_cannot_create_a_story(client):
    response = client.post(reverse("story-create"), {"title": "Nope"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not Story.objects.exists()


def test_login_page_logs_in_and_logout_needs_a_post(client, author):
    verify_email("ada")  # the log-in page lets in accounts with a verified address
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert 'name="login"' in page.content.decode()  # allauth's field: a username or an email address

    response = client.post(reverse("login"), {"login": "ada", "password": "pw-ada-123", "next": "/"})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session

    assert client.get(reverse("logout")).status_code == 405  # a link cannot log anyone out
    home = client.get(reverse("home")).content.decode()
    assert re.search(
        r'<form method="post" action="/accounts/logout/"[^>]*>\s*<input type="hidden" '
        r'name="csrfmiddlewaretoken"',
        home,
    )
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_wrong_password_shows_an_error(client, author):
    response = client.post(reverse("login"), {"login": "ada", "password": "wrong"})
    assert response.status_code == 200
    assert "form-error" in response.content.decode()
    assert "_auth_user_id" not in client.session


# --- Story page ---------------------------------------------------------------------------------
def test_story_page_shows_story_contributors_and_clips_in_order(client, story, author, django_user_model):
    other = django_user_model.objects.create_user("bea", password="pw")
    make_clip(story, other, position=2, original_filename="second.mp4")
    make_clip(story, author, position=1, original_filename="first.mp4")

    response = client.get(story.get_absolute_url())

    assert response.status_code == 200
    html = response.content.decode()
    assert "The Astronaut" in html and "Drifting between stations." in html
    assert html.index("first.mp4") < html.index("second.mp4")
    contributors = html[html.index('class="avatar-list"') :]
    assert "ada" in contributors and "bea" in contributors


def test_story_page_shows_each_ready_clips_candidate_grid(client, story, author):
    clip = make_clip(story, author)
    top = make_frame(clip, seconds=2.4, quality=94, rank=1, dominant=True, pose="frontal")
    side = make_frame(clip, seconds=65, quality=48, rank=2, pose="left", full_body=True)

    html = client.get(story.get_absolute_url()).content.decode()

    grid = html[html.index('class="frame-grid"') :]
    assert top.thumbnail.url in grid and side.thumbnail.url in grid
    assert f'href="{top.image.url}"' in grid  # click -> the full JPEG
    assert "00:02" in grid and "01:05" in grid
    assert 'quality__fill pct-94"' in grid and ">94<" in grid
    assert "Frontal" in grid and "Left profile" in grid
    assert grid.count("badge--dominant") == 1
    assert grid.count("badge--body") == 1
    assert "quality--high" in grid and "quality--low" in grid


def test_ready_clip_with_no_person_says_so(client, story, author):
    make_clip(story, author, people_found=False)
    html = client.get(story.get_absolute_url()).content.decode()
    assert "No person was found in this clip" in html
    assert "frame-grid" not in html


def test_failed_clip_shows_its_reason_and_warnings_are_shown(client, story, author):
    make_clip(story, author, status=Clip.Status.FAILED, error_message="The decoder gave up at 00:03.")
    make_clip(story, author, position=2, warning_message="The file ends at 4.1 s, before its stated 10 s.")
    html = client.get(story.get_absolute_url()).content.decode()
    assert "No frames could be taken from this clip." in html and "The decoder gave up at 00:03." in html
    assert "The file ends at 4.1 s, before its stated 10 s." in html


def test_clip_in_progress_has_a_live_progress_bar(client, story, author):
    clip = make_clip(story, author, status=Clip.Status.EXTRACTING, progress=40)
    html = client.get(story.get_absolute_url()).content.decode()
    assert 'role="progressbar"' in html and 'aria-valuenow="40"' in html
    assert f'data-status-url="/api/v1/clips/{clip.pk}"' in html
    assert 'data-status="extracting"' in html
    assert "js/clip-progress.js" in html
    assert "No person was found" not in html


def test_anonymous_sees_the_story_read_only_with_a_login_link(client, story):
    html = client.get(story.get_absolute_url()).content.decode()
    assert 'enctype="multipart/form-data"' not in html
    assert "Log in to upload" in html
    assert f"{reverse('login')}?next={story.get_absolute_url()}" in html.replace("%2F", "/")


def test_signed_in_user_gets_an_upload_form_for_videos(author_client, story):
    html = author_client.get(story.get_absolute_url()).content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert 'type="file"' in html and 'accept="video/*,.mkv,.avi,.mov,.webm,.mp4"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_unknown_story_and_clip_are_404(client):
    assert client.get("/stories/999/").status_code == 404
    assert client.get("/clips/999/").status_code == 404


# --- Upload -------------------------------------------------------------------------------------
def test_uploading_a_good_clip_redirects_and_extracts_frames(
    author_client, story, author, good_clip, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, open(good_clip, "rb") as fh:
        response = author_client.post(story.get_absolute_url(), {"video": fh})

    assert response.status_code == 302
    assert response["Location"] == story.get_absolute_url()
    assert len(callbacks) == 1  # extraction was queued once the row was committed
    clip = Clip.objects.get()
    assert (clip.story, clip.uploader, clip.original_filename) == (story, author, "good.mp4")
    assert clip.status == Clip.Status.READY, clip.error_message
    assert clip.candidates.exists()

    page = author_client.get(response["Location"]).content.decode()
    # The request ended before the extraction ran (it is queued on commit): the message says so.
    assert "Clip uploaded; extracting frames — progress below." in page
    assert "frame-grid" in page
    assert clip.candidates.order_by("rank").first().thumbnail.url in page


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.mp4", b"this is a text file, not a video\n"),
        ("photo.mp4", None),  # a JPEG renamed .mp4
        ("cut.mp4", "missing_header"),  # the first part of a real clip whose index comes last
    ],
)
def test_a_bad_file_shows_the_services_error_on_the_form_and_keeps_nothing(
    author_client, story, author, media_root, name, content, request, django_capture_on_commit_callbacks
):
    if content is None:
        content = jpeg_bytes()
    elif content == "missing_header":
        content = Path(request.getfixturevalue("missing_header_clip")).read_bytes()
    with pytest.raises(services.InvalidClip) as refused:  # what the service says about this file
        services.clip_create(story=story, uploader=author, upload=SimpleUploadedFile(name, content))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = author_client.post(story.get_absolute_url(), {"video": SimpleUploadedFile(name, content)})

    assert response.status_code == 400
    html = response.content.decode()
    error = re.search(r'<div class="field__error"[^>]*>(.*?)</div>', html, re.S)
    assert error, "the error is shown next to the file field"
    assert escape(refused.value.message) in error.group(1)
    assert 'enctype="multipart/form-data"' in html  # the form is still there
    assert not Clip.objects.exists()
    assert stored_files(media_root, "clips") == []
    assert callbacks == []


def test_a_zero_byte_file_is_refused_on_the_form(author_client, story, media_root):
    response = author_client.post(story.get_absolute_url(), {"video": SimpleUploadedFile("empty.mp4", b"")})
    assert response.status_code == 400
    assert "field__error" in response.content.decode()
    assert not Clip.objects.exists()
    assert stored_files(media_root, "clips") == []


def test_a_file_over_the_size_limit_is_refused_with_its_reason(author_client, story, media_root, settings):
    settings.CLIP_MAX_BYTES = 1024
    response = author_client.post(story.get_absolute_url(), {"video": SimpleUploadedFile("big.mp4", b"\0" * 4096)})
    assert response.status_code == 413
    assert "larger than" in response.content.decode()
    assert not Clip.objects.exists()
    assert stored_files(media_root, "clips") == []


def test_posting_without_a_file_asks_for_one(author_client, story):
    response = author_client.post(story.get_absolute_url(), {})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_anonymous_upload_is_sent_to_login_and_keeps_nothing(client, story, media_root):
    response = client.post(story.get_absolute_url(), {"video": SimpleUploadedFile("x.mp4", b"data")})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not Clip.objects.exists()
    assert stored_files(media_root, "clips") == []


def test_upload_form_enforces_csrf(story, author, media_root):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(author)
    upload = SimpleUploadedFile("notes.mp4", b"not a video", content_type="video/mp4")

    forged = csrf_client.post(story.get_absolute_url(), {"video": upload})
    assert forged.status_code == 403

    csrf_client.get(story.get_absolute_url())  # sets the CSRF cookie, as a browser would
    token = csrf_client.cookies["csrftoken"].value
    upload.seek(0)
    genuine = csrf_client.post(story.get_absolute_url(), {"video": upload, "csrfmiddlewaretoken": token})
    assert genuine.status_code == 400  # past the CSRF check, refused by the video checks
    assert not Clip.objects.exists()


# --- Clip page ----------------------------------------------------------------------------------
def test_clip_page_has_player_metadata_last_frame_grid_and_quality_chart(client, story, author):
    clip = make_clip(story, author, last_frame_seconds=9.97)
    clip.last_frame.save("last_frame.jpg", ContentFile(jpeg_bytes(1280, 720)))
    frames = [
        make_frame(clip, seconds=s, quality=q, rank=r, dominant=q > 90)
        for r, (s, q) in enumerate([(1, 95), (3, 70), (7, 40)], start=1)
    ]

    response = client.get(clip.get_absolute_url())

    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(rf'<video controls[^>]*src="{re.escape(clip.video.url)}"', html)
    assert "1280×720" in html and "10.00 s" in html and "h264" in html
    assert clip.last_frame.url in html
    chart = html[html.index('<svg class="quality-chart"') : html.index("</svg>", html.index('class="quality-chart"'))]
    bars = re.findall(
        r'<rect class="quality-chart__bar[^"]*" x="([\d.]+)" y="[\d.]+" width="[\d.]+" '
        r'height="([\d.]+)"',
        chart,
    )
    assert len(bars) == 3
    xs, heights = [float(x) for x, _ in bars], [float(h) for _, h in bars]
    assert xs == sorted(xs)  # placed by time
    assert heights[0] > heights[1] > heights[2]  # as tall as the quality
    assert chart.count("quality-chart__bar--dominant") == 1
    for frame in frames:
        assert frame.thumbnail.url in html


def test_clip_page_of_a_clip_being_extracted_polls_and_reloads(client, story, author):
    clip = make_clip(story, author, status=Clip.Status.UPLOADED, progress=0)
    html = client.get(clip.get_absolute_url()).content.decode()
    assert 'data-refresh="page"' in html
    assert "Waiting to start extracting frames." in html  # Clip.status_message, as the API says
    assert "quality-chart" not in html


def test_pages_make_a_bounded_number_of_queries(client, story, author, django_assert_max_num_queries):
    for position in range(1, 6):
        clip = make_clip(story, author, position=position)
        for rank in range(1, 4):
            make_frame(clip, seconds=rank, quality=50 + rank, rank=rank)
    user_model = get_user_model()
    assert user_model.objects.count() == 1
    with django_assert_max_num_queries(9):  # 8 + the story's character groups (three queries when it has some)
        assert client.get(story.get_absolute_url()).status_code == 200
    with django_assert_max_num_queries(5):
        assert client.get(reverse("home")).status_code == 200


def test_the_favicon_is_linked_from_every_page_and_served(client):
    home = client.get(reverse("home")).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in home
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(icon.streaming_content)
    # /favicon.ico, which browsers ask for on their own, is not a 404: it leads to the same icon.
    response = client.get("/favicon.ico", follow=True)
    assert response.redirect_chain == [("/static/favicon.svg", 302)]
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
