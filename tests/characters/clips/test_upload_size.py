"""The clip size rule lives in common.upload_size: the story page, the API (file, far-over body, link)
and the copy of an upload refuse at the same size with the same sentence, and the form states that limit."""

import re
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from characters.clips.forms import ClipUploadForm
from characters.models import Clip
from characters.vision.video import InvalidVideo, probe_video
from common.upload_size import clip_size_hint, format_size
from tests.support import servers
from tests.support.factories import StoryFactory, UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 3000
SENTENCE = f"larger than {format_size(LIMIT)}, the limit for a clip. Trim or compress it and try again."


@pytest.fixture
def limit(settings):
    settings.CLIP_MAX_BYTES = LIMIT
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def user():
    return UserFactory()


def _page_error(response) -> str:
    found = re.search(r'<div class="field__error"[^>]*>(.*?)</div>', response.content.decode(), re.S)
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def test_every_entry_point_refuses_an_oversized_clip_with_the_one_sentence(limit, user, client):
    story = StoryFactory()
    api = APIClient()
    api.force_authenticate(user)
    client.force_login(user)
    just_over = b"\0" * (LIMIT + 1)
    url = f"/api/v1/stories/{story.pk}/clips"

    page = client.post(story.get_absolute_url(), {"video": SimpleUploadedFile("big.mp4", just_over)})
    api_file = api.post(url, {"video": SimpleUploadedFile("big.mp4", just_over)}, format="multipart")
    api_far = api.post(url, {"video": SimpleUploadedFile("big.mp4", b"\0" * (LIMIT + 200_000))}, format="multipart")
    with servers.serve({"/big.mp4": servers.file_route(just_over, send_length=False)}) as server:
        api_link = api.post(url, {"source_url": server.url("/big.mp4")}, format="json")

    assert [r.status_code for r in (page, api_file, api_far, api_link)] == [413] * 4
    messages = [_page_error(page)] + [r.json()["error"]["message"] for r in (api_file, api_far, api_link)]
    assert [m.endswith(SENTENCE) for m in messages] == [True] * 4, messages
    assert messages[2].startswith("The upload is")  # refused from its Content-Length, before reading it
    assert not Clip.objects.exists()


def test_the_form_states_the_same_limit(limit):
    assert clip_size_hint() == f"up to {format_size(LIMIT)}"
    assert clip_size_hint() in ClipUploadForm().fields["video"].help_text


def test_the_probe_refuses_at_the_same_size(limit, tmp_path):
    """characters.vision.video.probe_video refuses with the same rule and the same sentence."""
    at_limit, over = tmp_path / "at.mp4", tmp_path / "over.mp4"
    at_limit.write_bytes(b"\0" * LIMIT)
    over.write_bytes(b"\0" * (LIMIT + 1))
    with pytest.raises(InvalidVideo) as refused_over:
        probe_video(over)
    with pytest.raises(InvalidVideo) as refused_at:  # not a video, but not too large either
        probe_video(at_limit)
    assert SENTENCE in str(refused_over.value) and SENTENCE not in str(refused_at.value)
