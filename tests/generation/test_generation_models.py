"""Each fal model's contract: the real builder's payload through the real fal_client, the fake checking it against
the model's published schema (422 in fal's shape otherwise); the seed's body; honest offline previews; attribution."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from characters.models import PinnedCharacter
from generation import payloads
from generation.models import GenerationJob
from generation.providers import ProviderFailed, ProviderRequest
from generation.providers.fal import FalProvider
from tests.support.generation import canonical_character, licensee_of, offline_provider, pinned_story  # noqa: F401 (fixture)
from tests.support.generation_providers import api

pytestmark = pytest.mark.django_db

I2V_MODEL = "fal-ai/kling-video/v2.6/pro/image-to-video"


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = "http://testserver"


def _request_for(model_id: str) -> payloads.PayloadInput:
    return payloads.PayloadInput(
        prompt="@Element1 walks to the window",
        duration=5,
        aspect_ratio="9:16",
        negative_prompt="blur",
        image_url="https://example.test/ref/full_body.jpg",
        elements=[
            {
                "frontal_image_url": "https://example.test/p1/front.jpg",
                "reference_image_urls": ["https://example.test/p1/angle1.jpg"],
            }
        ],
        with_audio=payloads.supports_audio(model_id),
        # O1 and O3 take style references; the prompt names them as fal's docs do
        image_urls=["https://example.test/style/1.jpg"] if payloads.takes_style_images(model_id) else [],
    )


@pytest.mark.parametrize("model_id", sorted(m for m in payloads.BUILDERS if m.startswith("fal-ai/")))
def test_each_models_payload_goes_through_fal_client_and_the_fake_accepts_it(fake_fal, model_id):
    arguments = payloads.build(model_id, _request_for(model_id))
    if payloads.takes_style_images(model_id):
        assert arguments["image_urls"] == ["https://example.test/style/1.jpg"]
    request_id = FalProvider().submit(ProviderRequest(model_id=model_id, arguments=arguments))
    (submission,) = fake_fal.submissions
    assert (submission.endpoint, submission.status_code, submission.request_id) == (model_id, 200, request_id)
    assert submission.arguments == arguments
    # and the fake's result body is what the model's output schema says
    assert payloads.validation_errors(model_id, fake_fal.result_body(fake_fal.only_request()), part="output") == []


def test_a_payload_the_model_does_not_take_gets_fals_422_and_a_clear_message(fake_fal):
    wrong = {"prompt": "x", "image_url": "https://example.test/a.jpg", "aspect_ratio": "16:9", "duration": "5"}
    with pytest.raises(ProviderFailed) as refused:
        FalProvider().submit(ProviderRequest(model_id=I2V_MODEL, arguments=wrong))
    assert "start_image_url: Field required" in str(refused.value)
    assert "Extra inputs are not permitted" in str(refused.value)
    assert fake_fal.submissions[0].status_code == 422 and fake_fal.requests == {}


def test_a_job_whose_body_breaks_the_schema_fails_with_fals_words(fake_fal, good_clip, generate, monkeypatch):
    world = pinned_story(good_clip, [])
    # A builder bug slipping past our own check: the v2.1 spelling sent to v2.6.
    monkeypatch.setitem(payloads.BUILDERS, I2V_MODEL, payloads.kling_v21_image)
    monkeypatch.setattr(payloads, "validation_errors", lambda *a, **k: [])
    response = generate(world.contributor, story_id=world.story.pk, prompt="She waves")
    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    assert job.status == "failed" and job.cost_usd == Decimal("0.350")
    assert job.error.startswith("The provider refused the request:") and "start_image_url: Field required" in job.error


def test_the_seeds_body_without_story_id_goes_to_the_characters_story(fake_fal, good_clip, generate):
    world = pinned_story(good_clip, [])
    body = {
        "character_id": world.character.character_id,
        "prompt": "She draws her sword",
        "duration": 5,
        "aspect_ratio": "16:9",
    }
    quote = api(world.contributor).post("/api/v1/generate/quote", body, format="json")
    assert quote.status_code == 200, quote.content
    assert quote.json()["provider"] == "fal" and quote.json()["model_id"] == I2V_MODEL

    response = generate(world.contributor, **body)
    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["status"] == "processing" and answer["state"] in ("queued", "submitted")
    assert GenerationJob.objects.get(job_id=answer["job_id"]).story == world.story
    assert fake_fal.submissions[0].arguments == quote.json()["arguments"]  # the quote said exactly what went out


def test_the_seeds_body_from_a_licensee_asks_for_their_story_id(fake_fal, good_clip, generate):
    world = pinned_story(good_clip, [])
    buyer, own_story, _ = licensee_of(world.character)
    response = generate(buyer, character_id=world.character.character_id, prompt="She draws her sword")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "story_required" and f"story {world.story.pk}" in error["message"]
    assert "Give story_id" in error["message"] and not GenerationJob.objects.exists()
    assert (
        generate(
            buyer, story_id=own_story.pk, character_id=world.character.character_id, prompt="She draws her sword"
        ).status_code
        == 202
    )


@pytest.mark.usefixtures("offline_provider")
def test_an_offline_preview_costs_nothing_says_so_and_its_score_is_not_meaningful(good_clip, generate):
    world = pinned_story(good_clip, [(1, 0)])
    quote = (
        api(world.contributor)
        .post(
            "/api/v1/generate/quote", {"story_id": world.story.pk, "prompt": "She runs", "duration": 5}, format="json"
        )
        .json()
    )
    assert (quote["provider"], quote["offline_preview"], quote["cost_usd"], quote["would_cost_usd"]) == (
        "offline",
        True,
        "0.000",
        "0.560",
    )
    assert quote["summary"] == (
        "Offline preview — made on this machine from the references, not by Kling O1 "
        "reference-to-video; $0.00. On fal this would cost $0.56."
    )
    response = generate(world.contributor, story_id=world.story.pk, prompt="She runs")
    assert response.status_code == 202 and response.json()["cost_usd"] == "0.000"
    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    assert (job.status, job.cost_usd, job.would_cost_usd) == ("complete", Decimal("0.000"), Decimal("0.560"))
    body = api(world.contributor).get(f"/api/v1/generate/{job.job_id}").json()
    assert body["offline_preview"] is True and body["consistency_score_meaningful"] is False
    assert "says nothing" in body["consistency_note"]
    page = APIClient()
    page.force_login(world.contributor)
    html = page.get(job.get_absolute_url()).content.decode()
    assert "Offline preview — made on this machine" in html and 'data-role="score-not-meaningful"' in html


def test_four_pins_the_quote_sends_them_all_and_leaves_none_out_before_anything_is_spent(fake_fal, good_clip):
    world = pinned_story(good_clip, [(1, 2), (2, 0), (3, 0), (4, 1)])
    quote = (
        api(world.contributor)
        .post(
            "/api/v1/generate/quote", {"story_id": world.story.pk, "prompt": "They meet", "duration": 3}, format="json"
        )
        .json()
    )
    assert [p["element_index"] for p in quote["pinned_elements"]] == [1, 2, 3, 4]
    assert quote["left_out_elements"] == []
    assert len(quote["arguments"]["elements"]) == 4
    assert quote["arguments"]["duration"] == "3" and quote["cost_usd"] == "0.336"
    page = APIClient()
    page.force_login(world.contributor)
    html = page.get(f"/stories/{world.story.pk}/create/").content.decode()
    assert 'data-role="left-out"' not in html
    assert not GenerationJob.objects.exists()


def test_a_pin_beyond_the_input_budget_is_named_by_the_quote_and_the_page_before_spending(
    fake_fal, good_clip, monkeypatch
):
    """A season never has more than 7 pins; a smaller budget (as style images would leave) shows the same path."""
    monkeypatch.setattr(payloads, "MAX_INPUTS", 3)
    world = pinned_story(good_clip, [(1, 0), (2, 0), (3, 0), (4, 0)])
    body = {"story_id": world.story.pk, "prompt": "They meet", "duration": 3}
    quote = api(world.contributor).post("/api/v1/generate/quote", body, format="json").json()
    assert [p["element_index"] for p in quote["pinned_elements"]] == [1, 2, 3]
    (left,) = quote["left_out_elements"]
    assert left["element_index"] == 4 and "at most 3 inputs" in left["reason"]
    page = APIClient()
    page.force_login(world.contributor)
    html = page.get(f"/stories/{world.story.pk}/create/").content.decode()
    assert 'data-role="left-out"' in html and "@Element4 (Hero 4) is left out" in html
    assert not GenerationJob.objects.exists()


def test_a_reference_job_belongs_to_the_character_its_pins_show(fake_fal, good_clip, generate):
    world = pinned_story(good_clip, [(1, 0)])
    newer = canonical_character(world.story, world.admin, good_clip)  # the story's latest, pinned nowhere
    assert PinnedCharacter.objects.get().character == world.character != newer
    response = generate(world.contributor, story_id=world.story.pk, prompt="She runs")
    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    assert job.mode == "reference-to-video" and job.character == world.character


def test_image_to_video_without_character_id_uses_the_chosen_groups_character_and_says_which(fake_fal, good_clip):
    """group_id picks the story's locked character of that group; without either, the latest one, said so."""
    from characters.models import Character
    from tests.support.factories import CharacterGroupFactory

    world = pinned_story(good_clip, [])
    eileen = world.character
    astronaut, robot, cat = (
        CharacterGroupFactory(story=world.story, label=label) for label in ("Eileen", "Bolt", "Cat")
    )
    Character.objects.filter(pk=eileen.pk).update(group=astronaut)
    bolt = canonical_character(world.story, world.admin, good_clip, group=robot)  # the latest locked character
    body = {"story_id": world.story.pk, "prompt": "They wave", "duration": 5}

    chosen = api(world.contributor).post("/api/v1/generate/quote", {**body, "group_id": astronaut.pk}, format="json")
    assert chosen.status_code == 200, chosen.content
    assert chosen.json()["character_id"] == eileen.character_id
    assert (
        chosen.json()["character_choice"]
        == f"Uses {eileen.name} ({eileen.character_id}), the locked character of Eileen."
    )

    latest = api(world.contributor).post("/api/v1/generate/quote", body, format="json").json()
    assert latest["character_id"] == bolt.character_id
    assert "the story's latest locked character (give character_id or group_id to choose)" in latest["character_choice"]

    refused = api(world.contributor).post("/api/v1/generate/quote", {**body, "group_id": cat.pk}, format="json")
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert f"Character group {cat.pk} of this story has no locked character yet" in message
    assert (
        f"Eileen (group {astronaut.pk}): {eileen.name}" in message
        and f"Bolt (group {robot.pk}): {bolt.name}" in message
    )
    assert not GenerationJob.objects.exists()
