"""One upload limit per user (CLIP_UPLOAD_RATE) for every way a clip comes in: the story page, the API's
file upload and its upload by link. Counted in characters.clips.services, so no entry point walks around it."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from characters.clips import services as services
from characters.models import Clip
from common.exceptions import ServiceError
from tests.support import servers
from tests.support.factories import StoryFactory, UserFactory

pytestmark = pytest.mark.django_db

NOT_A_VIDEO = b"plain text, refused by the probe\n"


@pytest.fixture(autouse=True)
def rate(settings):
    settings.CLIP_UPLOAD_RATE = "3/hour"
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]


def page_upload(client: Client, story):
    return client.post(story.get_absolute_url(), {"video": SimpleUploadedFile("notes.mp4", NOT_A_VIDEO)})


def test_story_page_uploads_stop_at_the_rate_and_the_api_shares_the_count(good_clip):
    user, story = UserFactory(), StoryFactory()
    page = Client()
    page.force_login(user)

    statuses = [page_upload(page, story).status_code for _ in range(6)]
    assert statuses == [400, 400, 400, 429, 429, 429]
    refused = page_upload(page, story)
    message = re.search(r'<div class="field__error"[^>]*>(.*?)</div>', refused.content.decode(), re.S).group(1)
    assert "upload limit of 3 clips per hour" in message
    assert 0 < int(refused["Retry-After"]) <= 3600  # the page says when too, as the API does

    api = APIClient()
    api.force_authenticate(user)
    with open(good_clip, "rb") as fh:
        response = api.post(f"/api/v1/stories/{story.pk}/clips", {"video": fh}, format="multipart")
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "upload_rate_limited"
    assert 0 < int(response["Retry-After"]) <= 3600
    assert error["details"]["retry_after_seconds"] == int(response["Retry-After"])
    assert not Clip.objects.exists()


def test_upload_by_link_over_the_rate_is_refused_before_anything_is_fetched(good_clip):
    user, story = UserFactory(), StoryFactory()
    for _ in range(3):
        with pytest.raises(ServiceError):
            services.clip_create(story=story, uploader=user, upload=SimpleUploadedFile("x.mp4", NOT_A_VIDEO))
    api = APIClient()
    api.force_authenticate(user)
    with servers.serve({"/clip.mp4": servers.file_route(good_clip.read_bytes())}) as server:
        response = api.post(f"/api/v1/stories/{story.pk}/clips", {"source_url": server.url("/clip.mp4")}, format="json")
    assert response.status_code == 429
    assert server.requests == []  # the server was never asked


def test_upload_by_link_counts_once_per_clip(good_clip, settings):
    settings.CLIP_UPLOAD_RATE = "2/hour"
    user, story = UserFactory(), StoryFactory()
    api = APIClient()
    api.force_authenticate(user)
    with servers.serve({"/notes.mp4": servers.file_route(NOT_A_VIDEO)}) as server:
        statuses = [
            api.post(
                f"/api/v1/stories/{story.pk}/clips", {"source_url": server.url("/notes.mp4")}, format="json"
            ).status_code
            for _ in range(3)
        ]
    assert statuses == [400, 400, 429]
    assert len(server.requests) == 2


def test_each_user_has_their_own_allowance_and_an_empty_rate_means_no_limit(settings):
    story = StoryFactory()
    first, second = UserFactory(), UserFactory()
    for _ in range(3):
        with pytest.raises(services.InvalidClip):
            services.clip_create(story=story, uploader=first, upload=SimpleUploadedFile("x.mp4", NOT_A_VIDEO))
    with pytest.raises(ServiceError) as over:
        services.clip_create(story=story, uploader=first, upload=SimpleUploadedFile("x.mp4", NOT_A_VIDEO))
    assert over.value.status_code == 429
    with pytest.raises(services.InvalidClip):  # refused for what it is, not for the rate
        services.clip_create(story=story, uploader=second, upload=SimpleUploadedFile("x.mp4", NOT_A_VIDEO))
    settings.CLIP_UPLOAD_RATE = ""
    with pytest.raises(services.InvalidClip):
        services.clip_create(story=story, uploader=first, upload=SimpleUploadedFile("x.mp4", NOT_A_VIDEO))
