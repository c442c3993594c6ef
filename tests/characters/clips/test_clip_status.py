"""A clip's status is told once (Clip.status_message) and its unfinished statuses listed once
(Clip.IN_PROGRESS_STATUSES): the story page, the clip page, the API and the admin all say the same."""

from html import escape

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from characters.clips import services
from characters.models import Clip
from common.exceptions import ServiceError
from tests.support.factories import CandidateFrameFactory, ClipFactory, UserFactory

pytestmark = pytest.mark.django_db

STATES = {
    "queued": {"status": Clip.Status.UPLOADED, "progress": 0},
    "making the playable copy": {"status": Clip.Status.EXTRACTING, "progress": 12, "playable_video": ""},
    "extracting": {"status": Clip.Status.EXTRACTING, "progress": 60, "playable_video": "clips/p.mp4"},
    "failed with a reason": {"status": Clip.Status.FAILED, "error_message": "The stream ended <early>."},
    "failed with no reason": {"status": Clip.Status.FAILED, "error_message": ""},
    "ready": {"status": Clip.Status.READY, "people_found": True},
}


@pytest.fixture
def clip_in():
    def make(fields):
        clip = ClipFactory()
        CandidateFrameFactory(clip=clip, rank=1)
        Clip.objects.filter(pk=clip.pk).update(**fields)
        return Clip.objects.get(pk=clip.pk)

    return make


@pytest.mark.parametrize("fields", STATES.values(), ids=STATES.keys())
def test_pages_api_and_admin_tell_the_same_status_message(fields, clip_in, client):
    clip = clip_in(fields)
    message = clip.status_message
    assert message

    api = APIClient().get(f"/api/v1/clips/{clip.pk}").json()
    assert api["message"] == message
    assert api["status_label"] == clip.get_status_display()

    staff = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(staff)
    admin_page = client.get(reverse("admin:characters_clip_change", args=[clip.pk])).content.decode()
    assert escape(message) in admin_page

    if clip.status != Clip.Status.READY:  # a ready clip's pages show its frames rather than a sentence
        for url in (clip.story.get_absolute_url(), clip.get_absolute_url()):
            assert escape(message) in client.get(url).content.decode(), url


@pytest.mark.parametrize("status", Clip.Status.values)
def test_what_counts_as_unfinished_is_the_one_list(status, clip_in, client):
    clip = clip_in({"status": status})
    in_progress = status in Clip.IN_PROGRESS_STATUSES

    assert clip.is_finished is not in_progress
    assert APIClient().get(f"/api/v1/clips/{clip.pk}").json()["finished"] is not in_progress
    section = client.get(clip.story.get_absolute_url()).content.decode()
    assert ('data-role="progress-block"' in section) is in_progress
    assert f'data-finished="{"false" if in_progress else "true"}"' in section
    # Re-running an extraction is refused exactly while one is queued or running (and not stuck).
    if in_progress:
        with pytest.raises(ServiceError, match="being extracted already"):
            services.clip_request_extraction(clip=clip, user=clip.uploader)
    else:
        assert services.clip_request_extraction(clip=clip, user=clip.uploader).status == Clip.Status.UPLOADED
