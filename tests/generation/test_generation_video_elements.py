"""Kling O3 with an element built from a pin's video clip, and Kling v3 image-to-video with the pins as elements:
each builder's payload through the real fal client to the fake (which checks the model's schema), the input budget
with a video, what the quote, the API and the create page say before spending, and who the clip is attributed to."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from characters.models import Character, Clip, PinningSettings
from generation import payloads, prompts
from generation.models import GenerationJob
from generation.providers import ProviderFailed, ProviderRequest
from generation.providers.fal import FalProvider
from tests.support.generation import canonical_character, pin, pinned_story
from tests.support.generation_providers import api

pytestmark = pytest.mark.django_db

O3 = "fal-ai/kling-video/o3/pro/reference-to-video"
O1 = "fal-ai/kling-video/o1/reference-to-video"
V3_I2V = "fal-ai/kling-video/v3/pro/image-to-video"
IMAGES = {"frontal_image_url": "https://example.test/p/front.jpg", "reference_image_urls": ["https://example.test/a"]}


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = "http://testserver"


def playable(clip: Clip, **fields) -> Clip:
    """The clip as an extraction run leaves it: its upload already is the playable H.264 copy."""
    Clip.objects.filter(pk=clip.pk).update(playable_video=clip.video.name, **fields)
    return Clip.objects.get(pk=clip.pk)


def quote(user, **body):
    return api(user).post("/api/v1/generate/quote", body, format="json")


def _request(elements: list, **extra) -> payloads.PayloadInput:
    return payloads.PayloadInput(prompt="@Element1 waves", duration=5, aspect_ratio="16:9", elements=elements, **extra)


# --- the builders, through the real client ---------------------------------------------------------------------


def test_o3_with_a_video_element_goes_through_the_fal_client_and_the_fake_accepts_it(fake_fal):
    elements = [{"video_url": "https://example.test/clip.mp4"}, IMAGES]
    arguments = payloads.build(O3, _request(elements))
    assert arguments["elements"] == elements
    FalProvider().submit(ProviderRequest(model_id=O3, arguments=arguments))
    (submission,) = fake_fal.submissions
    assert (submission.endpoint, submission.status_code, submission.arguments) == (O3, 200, arguments)


def test_v3_image_to_video_sends_the_elements_beside_the_start_image_and_the_fake_accepts_it(fake_fal):
    request = _request([IMAGES, IMAGES], image_url="https://example.test/ref.jpg", negative_prompt="blur")
    arguments = payloads.build(V3_I2V, request)
    assert arguments["start_image_url"] == "https://example.test/ref.jpg" and arguments["elements"] == [IMAGES] * 2
    assert "elements" not in payloads.build(V3_I2V, _request([], image_url="https://example.test/ref.jpg"))
    FalProvider().submit(ProviderRequest(model_id=V3_I2V, arguments=arguments))
    assert fake_fal.submissions[0].status_code == 200


def test_two_video_elements_are_refused_by_us_and_by_the_schema_with_fals_422(fake_fal):
    two = [{"video_url": "https://example.test/a.mp4"}, {"video_url": "https://example.test/b.mp4"}]
    with pytest.raises(payloads.PayloadError, match="at most 1 element built from a video per request, not 2"):
        payloads.build(O3, _request(two))
    # Sent anyway (a builder bug): the model's schema refuses it, as fal would.
    body = {"prompt": "@Element1 waves", "elements": two, "duration": "5", "aspect_ratio": "16:9"}
    with pytest.raises(ProviderFailed) as refused:
        FalProvider().submit(ProviderRequest(model_id=O3, arguments=body))
    assert "elements: Too many items match" in str(refused.value)
    assert fake_fal.submissions[0].status_code == 422 and fake_fal.requests == {}


def test_models_without_video_elements_refuse_one():
    with pytest.raises(payloads.PayloadError, match="Kling O1 reference-to-video takes no element built from a video"):
        payloads.build(O1, _request([{"video_url": "https://example.test/a.mp4"}]))


# --- the budget with a video --------------------------------------------------------------------------------------


def test_with_a_video_the_budget_is_four_inputs_in_its_one_home():
    assert (payloads.input_budget(with_video=False), payloads.input_budget(with_video=True)) == (7, 4)
    video = {"video_url": "https://example.test/a.mp4"}
    payloads.build(O3, _request([video, IMAGES, IMAGES, IMAGES]))  # 4 fit
    with pytest.raises(payloads.PayloadError, match="5 inputs .* with a video element: the limit is 4"):
        payloads.build(O3, _request([video, IMAGES, IMAGES, IMAGES, IMAGES]))
    with pytest.raises(payloads.PayloadError, match="with a video element: the limit is 4"):
        payloads.build(O3, _request([video, IMAGES, IMAGES], image_urls=["https://example.test/s1", "https://x/s2"]))
    payloads.build(O3, _request([IMAGES] * 5))  # without a video the same five fit


def _pin_input(index: int, video: bool = True) -> prompts.PinInput:
    return prompts.PinInput(
        pin_id=100 + index,
        element_index=index,
        label=f"Hero {index}",
        frontal_url=f"https://example.test/{index}.jpg",
        video_url=f"https://example.test/{index}.mp4" if video else "",
        video_problem="" if video else "the clip is 2.0 s long; a video element must be 3–10 s",
    )


def test_the_video_pin_always_goes_and_the_pins_beyond_the_video_budget_are_named():
    pins = [_pin_input(i) for i in (1, 2, 3, 4, 5)]
    fitting, elements, left_out = prompts.build_video_elements(pins, 5, style_images=1)
    assert [p.element_index for p in fitting] == [1, 2, 5]  # 4 inputs: a style image, the video pin, two more
    assert elements[2] == {"video_url": "https://example.test/5.mp4"} and "video_url" not in elements[0]
    assert [p["element_index"] for p in left_out] == [3, 4]
    assert "with @Element5 sent as a video, at most 4 inputs fit" in left_out[0]["reason"]


def test_a_pin_whose_clip_cannot_go_as_video_is_refused_with_the_reason():
    with pytest.raises(prompts.PlanError, match=r"@Element2 \(Hero 2\) cannot go as a video: the clip is 2.0 s"):
        prompts.build_video_elements([_pin_input(1), _pin_input(2, video=False)], 2)
    with pytest.raises(prompts.PlanError, match="no active pinned character @Element3"):
        prompts.build_video_elements([_pin_input(1)], 3)


def test_the_clips_own_limits():
    ok = {"seconds": 5.0, "width": 1280, "height": 720, "size_bytes": 10_000_000}
    assert payloads.video_element_problem(**ok) is None
    assert "2.5 s long" in payloads.video_element_problem(**{**ok, "seconds": 2.5})
    assert "11.0 s long" in payloads.video_element_problem(**{**ok, "seconds": 11.0})
    assert "640×360" in payloads.video_element_problem(**{**ok, "width": 640, "height": 360})
    assert "at most 200 MB" in payloads.video_element_problem(**{**ok, "size_bytes": 201 * 1024 * 1024})


# --- the quote, the API and the page -----------------------------------------------------------------------------


def test_the_quote_says_what_goes_as_video_and_the_job_sends_exactly_that(fake_fal, good_clip, generate):
    world = pinned_story(good_clip, [(1, 1), (2, 0)])
    clip = playable(world.clip)
    body = {"story_id": world.story.pk, "prompt": "They meet", "model_id": O3, "video_element_pin": 2}
    answer = quote(world.contributor, **body)
    assert answer.status_code == 200, answer.content
    data = answer.json()
    video_url = f"http://testserver{clip.playable_video.url}"
    assert data["arguments"]["elements"][1] == {"video_url": video_url}
    assert "frontal_image_url" in data["arguments"]["elements"][0]
    assert data["video_element"] == {
        "element_index": 2,
        "label": "Hero 2",
        "clip_id": clip.pk,
        "video_url": video_url,
        "text": f"@Element2 (Hero 2) goes as a video: its source clip {clip.pk}.",
    }
    assert data["left_out_elements"] == [] and [c["usable"] for c in data["video_element_choices"]] == [True, True]
    assert not GenerationJob.objects.exists()  # the quote spends nothing

    fake_fal.script_next(queued_polls=0)
    response = generate(world.contributor, **body)
    assert response.status_code == 202, response.content
    assert fake_fal.submissions[0].arguments == data["arguments"]
    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    assert job.model_id == O3 and sorted(job.pinned_character_ids) == sorted(p.pk for p in world.pins)


def test_a_pin_whose_clip_is_too_short_is_offered_as_unusable_and_refused_when_asked(fake_fal, good_clip, generate):
    world = pinned_story(good_clip, [(1, 0)])
    playable(world.clip, duration_seconds=2.0)
    body = {"story_id": world.story.pk, "prompt": "She waves", "model_id": O3}
    (choice,) = quote(world.contributor, **body).json()["video_element_choices"]
    assert choice["usable"] is False and "2.0 s long" in choice["reason"]
    refused = generate(world.contributor, **body, video_element_pin=1)
    assert refused.status_code == 400
    assert "@Element1 (Hero 1) cannot go as a video: the clip is 2.0 s long" in refused.json()["error"]["message"]
    assert not GenerationJob.objects.exists() and fake_fal.submissions == []


def test_a_video_element_needs_a_model_that_takes_one_and_the_pins(fake_fal, good_clip):
    world = pinned_story(good_clip, [(1, 0)])
    playable(world.clip)
    o1 = quote(world.contributor, story_id=world.story.pk, prompt="She waves", video_element_pin=1)
    assert o1.status_code == 400 and f"ask for model_id {O3}" in o1.json()["error"]["message"]
    no_pins = quote(world.contributor, story_id=world.story.pk, prompt="x", use_pins=False, video_element_pin=1)
    assert no_pins.status_code == 400 and "A video element goes with the story's pinned" in no_pins.text
    unprocessed = Clip.objects.filter(pk=world.clip.pk)
    unprocessed.update(playable_video="")
    again = quote(world.contributor, story_id=world.story.pk, prompt="x", model_id=O3, video_element_pin=1)
    assert again.status_code == 400 and "has no playable copy yet" in again.json()["error"]["message"]


def test_the_video_pins_character_counts_like_any_sent_pin(fake_fal, good_clip, generate):
    world = pinned_story(good_clip, [(1, 0)])
    other = canonical_character(world.story, world.admin, good_clip, name="Bo Marsh")
    pin(world.story, world.clip, world.admin, 2, character=other)
    playable(world.clip)
    fake_fal.script_next(queued_polls=0)
    response = generate(
        world.contributor, story_id=world.story.pk, prompt="They meet", model_id=O3, video_element_pin=2
    )
    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    assert set(job.characters.all()) == {world.character, other}
    job.refresh_from_db()
    assert job.status == "complete", job.error
    used = dict(Character.objects.filter(pk__in=[world.character.pk, other.pk]).values_list("pk", "clips_used"))
    assert used == {world.character.pk: 1, other.pk: 1}


def test_v3_image_to_video_with_pins_sends_them_as_elements_and_the_quote_shows_it(fake_fal, good_clip, generate):
    world = pinned_story(good_clip, [(1, 1), (2, 0)])
    body = {
        "story_id": world.story.pk,
        "character_id": world.character.character_id,
        "prompt": "She waves",
        "model_id": V3_I2V,
    }
    data = quote(world.contributor, **body).json()
    assert data["mode"] == "image-to-video" and data["model_id"] == V3_I2V
    arguments = data["arguments"]
    assert arguments["start_image_url"].startswith("http://testserver/")
    assert [set(e) for e in arguments["elements"]] == [{"frontal_image_url", "reference_image_urls"}] * 2
    assert "@Element1" in arguments["prompt"] and "@Element2" in arguments["prompt"]
    assert [p["element_index"] for p in data["pinned_elements"]] == [1, 2]

    response = generate(world.contributor, **body)
    assert response.status_code == 202, response.content
    assert fake_fal.submissions[0].status_code == 200 and fake_fal.submissions[0].arguments == arguments
    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    assert job.mode == "image-to-video" and len(job.pinned_character_ids) == 2
    assert list(job.characters.all()) == [world.character]

    # Pins only on request (automatic switching off) and not asked for: v3 goes with its start image alone.
    PinningSettings.objects.filter(pk=PinningSettings.SINGLETON_PK).update(auto_switch_model=False)
    bare = quote(world.contributor, **body).json()
    assert bare["mode"] == "image-to-video" and "elements" not in bare["arguments"]
    assert bare["pinned_elements"] == [] and bare["pins_on_request"] is True
    asked = quote(world.contributor, **body, use_pins=True).json()
    assert asked["mode"] == "image-to-video" and len(asked["arguments"]["elements"]) == 2


def test_the_create_page_offers_each_pins_clip_and_creates_the_video_job(fake_fal, good_clip):
    world = pinned_story(good_clip, [(1, 0)])
    short = Clip.objects.create(
        story=world.story, uploader=world.contributor, video=world.clip.video.name, status=Clip.Status.READY,
        duration_seconds=12.0, fps=30.0, width=1280, height=720,
    )  # fmt: skip
    pin(world.story, short, world.admin, 2)
    playable(world.clip)
    playable(short)
    page = APIClient()
    page.force_login(world.contributor)
    html = page.get(f"/stories/{world.story.pk}/create/").content.decode()
    assert 'name="video_element_pin"' in html
    assert '<option value="1" data-role="video-choice">@Element1 (Hero 1)</option>' in html
    assert "@Element2 (Hero 2) — cannot: the clip is 12.0 s long" in html

    post = {"prompt": "They meet", "duration": 5, "aspect_ratio": "16:9", "model_id": O3, "video_element_pin": 1}
    response = page.post(f"/stories/{world.story.pk}/create/", post)
    assert response.status_code == 302, response.content.decode()[-2000:]
    job = GenerationJob.objects.get()
    assert job.arguments["elements"][0] == {"video_url": f"http://testserver{world.clip.video.url}"}
