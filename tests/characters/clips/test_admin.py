"""The Django admin for stories, clips and candidate frames."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.core.files import File
from django.core.files.base import ContentFile
from django.urls import reverse

from characters.clips import services
from characters.models import CandidateFrame, Clip
from tests.characters.clips.test_pages import jpeg_bytes, make_clip, make_frame
from tests.support.media import own_media_root_for_every_test  # noqa: F401 -- fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def story(superuser):
    return services.story_create(title="Admin Story", description="For reviewing.", created_by=superuser)


@pytest.fixture
def ready_clip(story, superuser):
    clip = make_clip(story, superuser, last_frame_seconds=9.9)
    clip.last_frame.save("last_frame.jpg", ContentFile(jpeg_bytes()))
    make_frame(
        clip,
        seconds=1,
        quality=95,
        rank=1,
        dominant=True,
        full_body=True,
        detections=[{"box": [0.3, 0.1, 0.4, 0.5], "confidence": 0.97, "kind": "face"}],
    )
    make_frame(clip, seconds=4, quality=55, rank=2, pose="right")
    return clip


def test_story_changelist_and_change_page(admin_client, story, ready_clip):
    make_clip(story, story.created_by, position=2, status=Clip.Status.EXTRACTING, progress=30)
    changelist = admin_client.get(reverse("admin:characters_story_changelist"))
    assert changelist.status_code == 200
    assert "Admin Story" in changelist.content.decode()

    change = admin_client.get(reverse("admin:characters_story_change", args=[story.pk]))
    assert change.status_code == 200
    html = change.content.decode()
    assert "cps-status--ready" in html and "cps-status--extracting" in html  # clips inline with status
    assert 'class="cps-progress"' in html  # the clip in progress shows a bar
    assert ready_clip.last_frame.url in html


def test_clip_changelist_shows_thumbnail_status_progress_and_counts(
    admin_client, story, ready_clip, django_assert_max_num_queries
):
    for position in range(2, 6):
        make_clip(story, story.created_by, position=position, status=Clip.Status.EXTRACTING, progress=10 * position)
    with django_assert_max_num_queries(12):  # not one query per row
        response = admin_client.get(reverse("admin:characters_clip_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert ready_clip.last_frame.url in html
    assert "cps-status--ready" in html and html.count('class="cps-progress"') == 4
    assert '<progress class="cps-progress" value="50" max="100"' in html
    assert " style=" not in html  # the admin keeps the site's CSP: no style attribute
    assert "1280×720" in html and "10.0 s" in html
    assert '<td class="field-candidate_count">2</td>' in html
    assert "Re-extract frames" in html

    filtered = admin_client.get(reverse("admin:characters_clip_changelist"), {"status__exact": "ready"})
    assert filtered.status_code == 200
    assert filtered.content.decode().count('class="cps-progress"') == 0


def test_clip_change_page_has_player_readonly_metadata_and_frames(admin_client, ready_clip):
    response = admin_client.get(reverse("admin:characters_clip_change", args=[ready_clip.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'src="{ready_clip.video.url}"' in html and "<video" in html
    assert 'name="duration_seconds"' not in html and 'name="codec"' not in html  # metadata is read-only
    assert 'name="position"' in html  # ordering stays editable
    for frame in ready_clip.candidates.all():
        assert frame.thumbnail.url in html
    assert "Add clip" not in html


def test_clips_are_not_added_by_hand(admin_client):
    assert admin_client.get(reverse("admin:characters_clip_add")).status_code == 403


def test_candidate_frame_list_and_detail(admin_client, ready_clip):
    frame = ready_clip.candidates.get(rank=1)
    changelist = admin_client.get(reverse("admin:characters_candidateframe_changelist"))
    assert changelist.status_code == 200
    html = changelist.content.decode()
    assert frame.thumbnail.url in html
    assert "cps-quality--high" in html and "cps-quality--mid" in html

    detail = admin_client.get(reverse("admin:characters_candidateframe_change", args=[frame.pk]))
    assert detail.status_code == 200
    html = detail.content.decode()
    assert frame.image.url in html
    assert '<pre class="cps-json">' in html
    assert "&quot;confidence&quot;: 0.97" in html  # detections pretty-printed, one key per line
    assert 'name="quality"' not in html  # pipeline output is read-only

    filtered = admin_client.get(reverse("admin:characters_candidateframe_changelist"), {"pose__exact": "right"})
    assert filtered.content.decode().count("field-thumbnail_preview") == 1


def test_reextract_action_requeues_runs_and_is_logged(
    admin_client, superuser, story, good_clip, media_root, django_capture_on_commit_callbacks
):
    with open(good_clip, "rb") as fh:
        clip = services.clip_create(story=story, uploader=superuser, upload=File(fh, name="good.mp4"))
    stale = make_frame(clip, seconds=0, quality=1, rank=9)  # the re-run must replace it
    Clip.objects.filter(pk=clip.pk).update(status=Clip.Status.FAILED, error_message="worker lost")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(
            reverse("admin:characters_clip_changelist"),
            {"action": "reextract_frames", "_selected_action": [clip.pk]},
            follow=True,
        )

    assert response.status_code == 200
    assert "Frame extraction queued again for 1 clip." in response.content.decode()
    assert len(callbacks) == 1
    entry = LogEntry.objects.get(object_id=str(clip.pk), action_flag=CHANGE)
    assert entry.user == superuser
    assert "Re-extract frames requested." in entry.get_change_message()
    clip.refresh_from_db()
    assert clip.status == Clip.Status.READY, clip.error_message
    assert clip.error_message == ""
    assert not CandidateFrame.objects.filter(pk=stale.pk).exists()
    assert clip.candidates.exists()


def test_non_staff_users_are_refused(client, django_user_model, ready_clip):
    user = django_user_model.objects.create_user("visitor", password="pw")
    client.force_login(user)
    for name in (
        "admin:characters_story_changelist",
        "admin:characters_clip_changelist",
        "admin:characters_candidateframe_changelist",
    ):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    response = client.post(
        reverse("admin:characters_clip_changelist"), {"action": "reextract_frames", "_selected_action": [ready_clip.pk]}
    )
    assert response.status_code == 302
    assert not LogEntry.objects.exists()


def test_staff_without_change_permission_cannot_reextract(
    client, django_user_model, ready_clip, django_capture_on_commit_callbacks
):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_clip"))
    client.force_login(viewer)

    changelist = client.get(reverse("admin:characters_clip_changelist"))
    assert changelist.status_code == 200
    assert "reextract_frames" not in changelist.content.decode()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(
            reverse("admin:characters_clip_changelist"),
            {"action": "reextract_frames", "_selected_action": [ready_clip.pk]},
        )
    assert callbacks == []
    assert not LogEntry.objects.exists()
    ready_clip.refresh_from_db()
    assert ready_clip.status == Clip.Status.READY
