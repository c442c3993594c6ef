"""Style reference images (@Image1...) for reference-to-video: from the character's DNA or uploaded, through the
quote and generate APIs, the fake fal server checking the body against O1's schema; hostile uploads refused."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from characters.dna.services import reference_url
from generation import style_images
from generation.models import GenerationJob
from tests.support.generation import pinned_story
from tests.support.generation_providers import api
from tests.support.media import files_under, own_media_root  # noqa: F401 -- fixtures

pytestmark = pytest.mark.django_db

SITE = "http://testserver"
REF_MODEL = "fal-ai/kling-video/o1/reference-to-video"


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = SITE


@pytest.fixture
def world(good_clip):
    return pinned_story(good_clip, [(1, 1)])


def picture(width=640, height=480, image_format="PNG") -> bytes:
    """A real picture with some structure (a gradient and a disc), encoded as `image_format`."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)
    cv2.circle(image, (width // 2, height // 2), min(width, height) // 4, (30, 200, 90), -1)
    buffer = io.BytesIO()
    Image.fromarray(image[:, :, ::-1]).save(buffer, format=image_format)
    return buffer.getvalue()


def upload(data: bytes, name="style.png", content_type="image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def post(user, endpoint: str, django_capture_on_commit_callbacks, **body):
    with django_capture_on_commit_callbacks(execute=True):
        return api(user).post(endpoint, body, format="multipart")


def test_the_quote_shows_the_exact_image_urls_of_dna_style_references(fake_fal, world):
    character = world.character
    character.model_sheet.save("sheet.jpg", io.BytesIO(picture(900, 600, "JPEG")))
    body = {
        "story_id": world.story.pk,
        "prompt": "They sail",
        "character_id": character.character_id,
        "style_reference_kinds": ["model_sheet", "face_closeup"],
    }
    quote = api(world.contributor).post("/api/v1/generate/quote", body, format="json").json()
    expected = [SITE + character.model_sheet.url, reference_url(character, "face_closeup")]
    assert quote["arguments"]["image_urls"] == expected
    assert all(url.startswith(SITE + "/") for url in expected)  # absolute, as the pins' URLs are
    assert quote["arguments"]["prompt"] == "@Element1 They sail Keep the style of @Image1 and @Image2."
    assert [(r["position"], r["source"], r["kind"]) for r in quote["style_references"]] == [
        (1, "dna", "model_sheet"),
        (2, "dna", "face_closeup"),
    ]
    assert quote["left_out_style_references"] == [] and not GenerationJob.objects.exists()


def test_a_kind_the_character_lacks_is_refused_with_the_ones_it_has(fake_fal, world):
    body = {
        "story_id": world.story.pk,
        "prompt": "They sail",
        "character_id": world.character.character_id,
        "style_reference_kinds": ["side_profile"],
    }
    response = api(world.contributor).post("/api/v1/generate/quote", body, format="json")
    assert response.status_code == 400
    assert "has no side profile" in response.json()["error"]["message"]
    assert response.json()["error"]["details"]["available_kinds"] == ["face_closeup", "full_body"]


def test_an_uploaded_style_image_is_re_encoded_stored_with_the_job_and_sent_absolute(
    fake_fal, world, media_root, django_capture_on_commit_callbacks
):
    fake_fal.script_next(queued_polls=None)
    response = post(
        world.contributor,
        "/api/v1/generate",
        django_capture_on_commit_callbacks,
        story_id=world.story.pk,
        prompt="They sail",
        style_reference_kinds=["full_body"],
        style_images=[upload(picture(800, 600, "PNG"), name="ship.png")],
    )
    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    name = f"generated/{world.story.pk}/{job.job_id}/style-2.jpg"
    assert default_storage.exists(name)
    with default_storage.open(name) as fh:
        stored = Image.open(io.BytesIO(fh.read()))
        assert (stored.format, stored.size) == ("JPEG", (800, 600))  # our JPEG, not the PNG sent
    arguments = fake_fal.only_request().arguments  # the fake checked it against O1's schema
    assert fake_fal.only_request().endpoint == REF_MODEL
    assert arguments["image_urls"] == [
        reference_url(world.character, "full_body"),
        SITE + default_storage.url(name),
    ]
    assert arguments["prompt"].endswith("Keep the style of @Image1 and @Image2.")
    listed = api(world.contributor).get(f"/api/v1/generate/{job.job_id}").json()["style_references"]
    assert [(r["position"], r["source"], r["label"], r["url"]) for r in listed] == [
        (1, "dna", f"{world.character.name}'s full body", arguments["image_urls"][0]),
        (2, "upload", "upload ship.png", arguments["image_urls"][1]),
    ]


def test_the_quote_checks_an_upload_and_stores_nothing(fake_fal, world, media_root, django_capture_on_commit_callbacks):
    before = files_under(media_root)
    response = post(
        world.contributor,
        "/api/v1/generate/quote",
        django_capture_on_commit_callbacks,
        story_id=world.story.pk,
        prompt="They sail",
        style_images=[upload(picture(), name="a.png")],
    )
    assert response.status_code == 200, response.content
    (url,) = response.json()["arguments"]["image_urls"]
    assert url == f"{SITE}/media/generated/{world.story.pk}/JOB_ID/style-1.jpg"
    assert files_under(media_root) == before


def _truncated_png() -> bytes:
    data = picture(640, 480, "PNG")
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "data, name, words",
    [
        (b"", "empty.png", "is empty"),
        (b"<html><script>alert(1)</script></html>", "lying.png", "is not an image"),
        (_truncated_png(), "cut.png", "does not decode whole"),
        (picture(640, 480, "GIF"), "anim.png", "is GIF; JPEG, PNG or WebP"),
        (picture(200, 200, "PNG"), "tiny.png", "at least 300 px"),
        (picture(1500, 300, "PNG"), "strip.png", "aspect ratio is 5.00"),
    ],
    ids=["empty", "lying-name", "truncated", "gif", "too-small", "odd-shape"],
)
def test_a_hostile_upload_gets_a_clear_400_and_nothing_is_stored_or_spent(
    fake_fal, world, media_root, django_capture_on_commit_callbacks, data, name, words
):
    before = files_under(media_root)
    response = post(
        world.contributor,
        "/api/v1/generate",
        django_capture_on_commit_callbacks,
        story_id=world.story.pk,
        prompt="They sail",
        style_images=[upload(picture(), name="good.png"), upload(data, name=name)],
    )
    assert response.status_code == 400, response.content
    message = response.json()["error"]["message"]
    assert words in message and (name in message or "style_images" in str(response.json()))
    assert files_under(media_root) == before
    assert not GenerationJob.objects.exists() and fake_fal.submissions == []


def test_an_oversized_or_bomb_upload_is_refused_before_it_is_decoded(
    fake_fal, world, media_root, monkeypatch, django_capture_on_commit_callbacks
):
    before = files_under(media_root)
    monkeypatch.setattr(style_images, "STYLE_IMAGE_MAX_BYTES", 1_000)
    big = post(
        world.contributor,
        "/api/v1/generate",
        django_capture_on_commit_callbacks,
        story_id=world.story.pk,
        prompt="x",
        style_images=[upload(picture(1200, 900, "PNG"), name="big.png")],
    )
    assert big.status_code == 400 and "big.png" in big.json()["error"]["message"]
    monkeypatch.setattr(style_images, "STYLE_IMAGE_MAX_BYTES", 10 * 1024 * 1024)
    monkeypatch.setattr(style_images, "STYLE_IMAGE_MAX_PIXELS", 100_000)
    bomb = post(
        world.contributor,
        "/api/v1/generate",
        django_capture_on_commit_callbacks,
        story_id=world.story.pk,
        prompt="x",
        style_images=[upload(picture(640, 480, "PNG"), name="bomb.png")],
    )
    assert bomb.status_code == 400 and "declares 640×480 px" in bomb.json()["error"]["message"]
    assert files_under(media_root) == before and not GenerationJob.objects.exists()


def test_a_refused_license_use_removes_the_stored_upload(
    fake_fal, world, media_root, monkeypatch, django_capture_on_commit_callbacks
):
    from common.exceptions import ServiceError
    from marketplace import services as marketplace

    def refuse(*args, **kwargs):
        raise ServiceError("No license.", code="license_required", status_code=403)

    monkeypatch.setattr(marketplace, "license_consume_use", refuse)
    before = files_under(media_root)
    response = post(
        world.contributor,
        "/api/v1/generate",
        django_capture_on_commit_callbacks,
        story_id=world.story.pk,
        prompt="x",
        style_images=[upload(picture(), name="a.png")],
    )
    assert response.status_code == 403
    assert files_under(media_root) == before and not GenerationJob.objects.exists()


def test_a_model_without_style_images_refuses_them_naming_those_that_take_them(fake_fal, world):
    body = {
        "story_id": world.story.pk,
        "prompt": "They sail",
        "character_id": world.character.character_id,
        "use_pins": False,
        "style_reference_kinds": ["full_body"],
    }
    response = api(world.contributor).post("/api/v1/generate", body, format="json")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "Kling O1 reference-to-video" in message and "Kling O3 Pro reference-to-video" in message
    assert "text-to-video" in message and not GenerationJob.objects.exists()


def test_style_images_beyond_the_pins_budget_are_named_before_spending(fake_fal, good_clip):
    world = pinned_story(good_clip, [(1, 0), (2, 0), (3, 0), (4, 0)])
    body = {
        "story_id": world.story.pk,
        "prompt": "They meet",
        "character_id": world.character.character_id,
        "style_reference_kinds": ["full_body", "face_closeup"],
        "style_images": [upload(picture(), name=f"s{n}.png") for n in (1, 2)],
    }
    quote = api(world.contributor).post("/api/v1/generate/quote", body, format="multipart").json()
    assert len(quote["arguments"]["elements"]) == 4 and len(quote["arguments"]["image_urls"]) == 3
    (left,) = quote["left_out_style_references"]
    assert (left["position"], left["label"], left["source"]) == (4, "upload s2.png", "upload")
    assert "pinned characters come first" in left["reason"] and left["reason"] in quote["notes"]


# --- The create page ------------------------------------------------------------------------------


def page(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_the_create_page_offers_the_characters_dna_images_and_an_upload(fake_fal, world):
    html = page(world.contributor).get(f"/stories/{world.story.pk}/create/").content.decode()
    assert 'data-role="style-refs"' in html and 'enctype="multipart/form-data"' in html
    for ref in world.character.reference_images.all():
        assert f'value="{ref.kind}"' in html and ref.image.url in html
    assert 'value="model_sheet"' not in html  # this character has no model sheet
    assert 'name="style_images"' in html and "multiple" in html


def test_the_create_page_sends_the_picked_and_uploaded_style_images(
    fake_fal, world, media_root, django_capture_on_commit_callbacks
):
    fake_fal.script_next(queued_polls=None)
    form = {
        "character_id": world.character.character_id,
        "prompt": "They sail",
        "duration": 5,
        "aspect_ratio": "16:9",
        "style_reference_kinds": ["face_closeup"],
        "style_images": [upload(picture(), name="sea.png")],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = page(world.contributor).post(f"/stories/{world.story.pk}/create/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    job = GenerationJob.objects.get()
    assert [r["source"] for r in job.style_references] == ["dna", "upload"]
    assert fake_fal.only_request().arguments["image_urls"] == [r["url"] for r in job.style_references]
    assert default_storage.exists(job.style_references[1]["name"])


def test_the_create_page_refuses_a_lying_upload_and_stores_nothing(fake_fal, world, media_root):
    before = files_under(media_root)
    form = {
        "character_id": world.character.character_id,
        "prompt": "They sail",
        "duration": 5,
        "aspect_ratio": "16:9",
        "style_images": [upload(b"MZ\x90\x00 not a picture at all", name="photo.jpg", content_type="image/jpeg")],
    }
    response = page(world.contributor).post(f"/stories/{world.story.pk}/create/", form)
    assert response.status_code == 400
    assert "“photo.jpg” is not an image" in response.content.decode()
    assert files_under(media_root) == before and not GenerationJob.objects.exists()


def test_the_fake_refuses_a_body_over_fals_input_budget_as_fal_does(fake_fal):
    from generation.providers import ProviderFailed, ProviderRequest
    from generation.providers.fal import FalProvider

    element = {"frontal_image_url": "https://site/f.jpg", "reference_image_urls": ["https://site/r.jpg"]}
    body = {"prompt": "x", "elements": [element] * 5, "image_urls": ["https://site/s.jpg"] * 3}
    assert not payloads_errors(body)  # each field fits its own schema: only the total breaks fal's rule
    with pytest.raises(ProviderFailed, match="Maximum 7 total"):
        FalProvider().submit(ProviderRequest(model_id=REF_MODEL, arguments=body))
    assert fake_fal.submissions[0].status_code == 422


def payloads_errors(body):
    from generation import payloads

    return payloads.validation_errors(REF_MODEL, body)


def test_dna_style_images_of_a_licensed_character_spend_its_license_and_show_on_the_job(
    fake_fal, good_clip, django_capture_on_commit_callbacks
):
    from tests.support.factories import StoryFactory, UserFactory
    from tests.support.generation import canonical_character, licensee_of

    world = pinned_story(good_clip, [(1, 0)])
    owner = UserFactory(username="owner")
    licensed = canonical_character(StoryFactory(created_by=owner), owner, good_clip, allow_licensing=True)
    buyer, _, license = licensee_of(licensed)
    # the buyer contributes to the pinned story, so only the licensed character needs a use
    from tests.support.generation import stored_clip

    stored_clip(world.story, buyer, good_clip)
    fake_fal.script_next(queued_polls=None)
    response = post(
        buyer,
        "/api/v1/generate",
        django_capture_on_commit_callbacks,
        story_id=world.story.pk,
        prompt="They sail",
        character_id=licensed.character_id,
        style_reference_kinds=["full_body"],
    )
    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get()
    assert licensed in job.characters.all()
    license.refresh_from_db()
    assert license.uses_remaining == 9
    html = page(buyer).get(job.get_absolute_url()).content.decode()
    assert 'data-role="style-references"' in html and f"{licensed.name}&#x27;s full body" in html


def test_an_offline_preview_renders_the_uploaded_style_image_too(
    good_clip, world, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from generation.providers import offline

    settings.GENERATION_PROVIDER, settings.FAL_KEY = "offline", ""
    rendered: list[tuple[str, ...]] = []
    real_submit = offline.OfflineProvider.submit

    def watch(self, request):
        rendered.append(tuple(request.image_names))
        return real_submit(self, request)

    monkeypatch.setattr(offline.OfflineProvider, "submit", watch)
    response = post(
        world.contributor,
        "/api/v1/generate",
        django_capture_on_commit_callbacks,
        story_id=world.story.pk,
        prompt="They sail",
        style_images=[upload(picture(), name="a.png")],
    )
    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    style_name = job.style_references[0]["name"]
    assert rendered and rendered[0][-1] == style_name  # after the pin's images, as in `image_urls`
    assert job.status == GenerationJob.Status.COMPLETE and job.provider == "offline"


def test_more_style_images_than_one_request_holds_are_refused_by_the_api(fake_fal, world, media_root):
    before = files_under(media_root)
    body = {
        "story_id": world.story.pk,
        "prompt": "x",
        "style_images": [upload(picture(), name=f"s{n}.png") for n in range(8)],
    }
    response = api(world.contributor).post("/api/v1/generate", body, format="multipart")
    assert response.status_code == 400 and "style_images" in response.content.decode()
    assert files_under(media_root) == before and not GenerationJob.objects.exists()
