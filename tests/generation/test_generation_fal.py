"""Generation through the real `fal_client` against the fake fal queue server on loopback.

Tasks run eagerly (in-process); `django_capture_on_commit_callbacks(execute=True)` runs what the
services queue after their transactions commit, as a worker would. The fake records every body it
receives, so each mode's payload is checked exactly as fal would see it.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from django.core.files.storage import default_storage
from django.utils import timezone

from characters.dna.services import reference_url
from characters.models import Character, PinnedCharacter
from characters.pins import services as pin_services
from generation import services, tasks
from generation.models import GenerationJob, WebhookDelivery
from generation.providers import TransientProviderError
from marketplace.models import License, LicenseUse
from tests.support.factories import StoryFactory, UserFactory
from tests.support.fake_fal import WebhookSigner
from tests.support.generation import canonical_character, licensee_of, pinned_story
from tests.support.generation_providers import api

pytestmark = pytest.mark.django_db

REF_MODEL = "fal-ai/kling-video/o1/reference-to-video"
I2V_MODEL = "fal-ai/kling-video/v2.6/pro/image-to-video"
T2V_MODEL = "fal-ai/kling-video/v2.6/pro/text-to-video"
DRIFT = "different character, different person, changing appearance, inconsistent features, morphing face"
QUALITY = "High quality, cinematic lighting, consistent character appearance"
WEBHOOK_PATH = "/api/v1/generate/webhooks/fal"
SITE = "http://testserver"


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = SITE


def poll(job: GenerationJob) -> GenerationJob:
    """What the next scheduled poll task does."""
    tasks.poll_generation_job.delay(job.pk)
    job.refresh_from_db()
    return job


def job_of(response) -> GenerationJob:
    assert response.status_code == 202, response.content
    return GenerationJob.objects.get(job_id=response.json()["job_id"])


def absolute(field_file) -> str:
    return SITE + field_file.url


def image_count(elements: list[dict]) -> int:
    return sum(1 + len(e["reference_image_urls"]) for e in elements)


@pytest.fixture
def pinned(good_clip):
    """Slots 1 (no angle), 2 (deactivated) and 3 (two angles) of a story with a canonical character."""
    world = pinned_story(good_clip, [(1, 0), (2, 1), (3, 2)])
    pin_services.pin_update(pin=world.pins[1], user=world.admin, is_active=False)
    return world


@pytest.fixture
def licensed(good_clip):
    """A character of one story, licensed (pack of 10) by a user who generates in their own story."""
    owner = UserFactory(username="owner")
    character = canonical_character(
        StoryFactory(created_by=owner),
        owner,
        good_clip,
        features=["short brown curly hair", "trimmed beard", "orange flight suit", "silver watch"],
        allow_licensing=True,
    )
    buyer, story, license = licensee_of(character)
    return character, buyer, story, license


def uses_left(license: License) -> int:
    license.refresh_from_db()
    return license.uses_remaining


# --- Exact payloads per mode ----------------------------------------------------------------------


def test_pins_go_out_as_kling_o1_elements_with_tags(fake_fal, pinned, generate):
    fake_fal.script_next(queued_polls=None)  # stays queued: we look at what was sent
    one, _, three = pinned.pins
    angles = list(three.angles.order_by("position"))

    response = generate(
        pinned.contributor,
        story_id=pinned.story.pk,
        prompt="@Element3 hands  Mara a map",
        duration=10,
        aspect_ratio="9:16",
    )

    job = job_of(response)
    body = response.json()
    assert body["mode"] == "reference-to-video" and body["cost_usd"] == "1.120"  # as the schema says: a string
    (submission,) = fake_fal.submissions
    assert submission.endpoint == REF_MODEL
    assert submission.authorization == "Key test-key"
    assert submission.webhook_url == f"{SITE}{WEBHOOK_PATH}?job={job.job_id}"  # the job rides along
    # Slot 2 is deactivated: slots 1 and 3 are sent as elements 1 and 2, the prompt's @Element3 is
    # rewritten to @Element2 and the tag of the unmentioned pin is put in front.
    assert submission.arguments == {
        "prompt": "@Element1 @Element2 hands Mara a map",
        "elements": [
            {"frontal_image_url": absolute(one.frontal_image), "reference_image_urls": [absolute(one.frontal_image)]},
            {
                "frontal_image_url": absolute(three.frontal_image),
                "reference_image_urls": [absolute(a.image) for a in angles],
            },
        ],
        "duration": "10",
        "aspect_ratio": "9:16",
    }
    job.refresh_from_db()
    assert job.arguments == submission.arguments and job.elements == submission.arguments["elements"]
    assert (job.mode, job.model_id, job.provider, job.duration, job.aspect_ratio) == (
        "reference-to-video",
        REF_MODEL,
        "fal",
        10,
        "9:16",
    )
    assert job.prompt_used == "@Element1 @Element2 hands Mara a map" and job.user_prompt == "@Element3 hands Mara a map"
    assert job.pinned_character_ids == [one.pk, three.pk] and job.character == pinned.character
    assert job.cost_usd == Decimal("1.120")
    assert job.status == "submitted" and job.provider_request_id == submission.request_id


def test_reference_to_video_sends_every_pin_of_the_season_each_with_its_angles(fake_fal, good_clip, generate):
    """An element is one of Kling O1's 7 inputs, whatever its images: 4 pins with 3+3+3+1 angles all go out."""
    world = pinned_story(good_clip, [(1, 3), (2, 3), (3, 3), (4, 1)])
    fake_fal.script_next(queued_polls=None)

    job = job_of(generate(world.contributor, story_id=world.story.pk, prompt="@Element2 and @Element1 race"))

    arguments = fake_fal.only_request().arguments
    assert [e["frontal_image_url"] for e in arguments["elements"]] == [absolute(p.frontal_image) for p in world.pins]
    assert [len(e["reference_image_urls"]) for e in arguments["elements"]] == [3, 3, 3, 1]
    assert image_count(arguments["elements"]) == 14
    assert arguments["prompt"] == "@Element3 @Element4 @Element2 and @Element1 race"
    job.refresh_from_db()
    assert job.pinned_character_ids == [p.pk for p in world.pins]
    assert "left out" not in job.error


def test_image_to_video_sends_the_dna_prompt_negative_prompt_and_the_reference_for_the_scene(
    fake_fal, licensed, generate
):
    character, buyer, story, license = licensed
    fake_fal.default_script.queued_polls = None

    action = job_of(
        generate(buyer, story_id=story.pk, character_id=character.character_id, prompt="She runs across the hangar")
    )
    dialogue = job_of(
        generate(
            buyer,
            story_id=story.pk,
            character_id=character.character_id,
            prompt="She whispers a secret to the camera",
            aspect_ratio="1:1",
        )
    )

    sent = [s.arguments for s in fake_fal.submissions]
    assert [s.endpoint for s in fake_fal.submissions] == [I2V_MODEL, I2V_MODEL]
    negative = f"{DRIFT}, blonde hair, platinum hair, clean shaven, long beard"  # dark brown hair, trimmed beard
    assert sent[0] == {
        "prompt": "Smiling astronaut in an orange flight suit. Character has short brown curly hair, trimmed beard. "
        f"She runs across the hangar. {QUALITY}",
        # Kling v2.6 spells it start_image_url and takes no aspect ratio; sound is off unless asked for
        "start_image_url": reference_url(character, "full_body"),
        "negative_prompt": negative,
        "duration": "5",
        "generate_audio": False,
    }
    assert sent[1]["start_image_url"] == reference_url(character, "face_closeup")
    assert sent[1]["prompt"].endswith(f"She whispers a secret to the camera. {QUALITY}")
    assert sent[1]["negative_prompt"] == negative and "aspect_ratio" not in sent[1]
    for job, kind in ((action, "full_body"), (dialogue, "face_closeup")):
        job.refresh_from_db()
        assert (job.mode, job.reference_image_used, job.negative_prompt) == ("image-to-video", kind, negative)
        assert job.character == character and job.cost_usd == Decimal("0.350")
    assert uses_left(license) == 8  # one use per job


@pytest.mark.parametrize("opted_out", [True, False])
def test_opting_out_or_nothing_locked_sends_text_to_video(fake_fal, pinned, generate, opted_out):
    story = pinned.story if opted_out else StoryFactory(title="Nothing locked")
    fake_fal.script_next(queued_polls=None)

    job = job_of(
        generate(
            pinned.contributor,
            story_id=story.pk,
            prompt="A storm over the harbour",
            use_pins=not opted_out,
            duration=10,
        )
    )

    (submission,) = fake_fal.submissions
    assert submission.endpoint == T2V_MODEL
    assert submission.arguments == {
        "prompt": "A storm over the harbour",
        "duration": "10",
        "aspect_ratio": "16:9",
        "generate_audio": False,
    }
    job.refresh_from_db()
    assert (job.mode, job.character, job.pinned_character_ids, job.cost_usd) == (
        "text-to-video",
        None,
        [],
        Decimal("0.700"),
    )


def test_the_quote_shows_mode_and_cost_and_spends_nothing(fake_fal, licensed):
    character, buyer, story, license = licensed
    response = api(buyer).post(
        "/api/v1/generate/quote",
        {
            "story_id": story.pk,
            "character_id": character.character_id,
            "prompt": "She jumps",
            "duration": 10,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body | {"prompt_used": None, "arguments": None} == {
        "mode": "image-to-video",
        "model": I2V_MODEL,
        "provider": "fal",
        "model_id": I2V_MODEL,
        "arguments": None,
        "offline_preview": False,
        "summary": "Kling v2.6 Pro image-to-video on fal, 10 s: $0.70.",
        "with_sound": False,
        "cost_usd": "0.700",
        "would_cost_usd": "0.700",
        "left_out_elements": [],
        "style_references": [],
        "left_out_style_references": [],
        "prompt_used": None,
        "pinned_elements": [],
        "available_pinned_elements": [],
        "pins_on_request": False,
        "reference_cost_usd": None,
        "character_id": character.character_id,
        "character_choice": f"Uses {character.name} ({character.character_id}), the character asked for.",
        "character_ids": [character.character_id],
        "notes": [],
        "video_element": None,
        "video_element_choices": [],
    }
    # the exact body that would be sent
    assert body["arguments"] == {
        "prompt": body["prompt_used"],
        "start_image_url": reference_url(character, "full_body"),
        "negative_prompt": body["arguments"]["negative_prompt"],
        "duration": "10",
        "generate_audio": False,
    }
    with_sound = (
        api(buyer)
        .post(
            "/api/v1/generate/quote",
            {
                "story_id": story.pk,
                "character_id": character.character_id,
                "prompt": "She jumps",
                "duration": 10,
                "with_sound": True,
            },
            format="json",
        )
        .json()
    )
    assert with_sound["cost_usd"] == "1.400" and with_sound["arguments"]["generate_audio"] is True
    assert fake_fal.submissions == [] and not GenerationJob.objects.exists() and uses_left(license) == 10


def test_a_prompt_naming_a_missing_element_is_refused_before_anything_is_spent(fake_fal, pinned, generate):
    response = generate(pinned.contributor, story_id=pinned.story.pk, prompt="@Element4 waves")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request" and "@Element4" in response.json()["error"]["message"]
    assert fake_fal.submissions == [] and not GenerationJob.objects.exists()


def test_without_a_license_nothing_is_queued(fake_fal, licensed, generate):
    character, _, _, _ = licensed
    stranger = UserFactory(username="stranger")
    response = generate(
        stranger, story_id=StoryFactory(created_by=stranger).pk, character_id=character.character_id, prompt="She jumps"
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "license_required"
    assert fake_fal.submissions == [] and not GenerationJob.objects.exists()


# --- Completion by polling ------------------------------------------------------------------------


def test_polling_completes_a_job_without_webhooks(fake_fal, pinned, generate, settings, good_clip):
    settings.GENERATION_USE_WEBHOOKS = False
    fake_fal.script_next(queued_polls=2, in_progress_polls=1)

    job = job_of(generate(pinned.contributor, story_id=pinned.story.pk, prompt="@Element1 looks at @Element3"))
    assert fake_fal.only_request().webhook_url is None

    job.refresh_from_db()  # the first poll ran right after the submission
    assert (job.status, job.queue_position) == ("submitted", 1)
    assert api(pinned.contributor).get(f"/api/v1/generate/{job.job_id}").json()["result"] is None
    assert (poll(job).status, job.queue_position) == ("submitted", 0)
    assert poll(job).status == "processing"
    job = poll(job)

    assert job.status == "complete", job.error
    assert job.video and default_storage.open(job.video.name).read() == good_clip.read_bytes()
    assert job.video.name == f"generated/{pinned.story.pk}/{job.job_id}.mp4"
    assert 0 <= job.consistency_score <= 100 and len(job.frame_scores) >= 3
    assert job.progress == 100 and job.queue_position is None and job.completed_at
    one, two, three = (PinnedCharacter.objects.get(pk=p.pk) for p in pinned.pins)
    assert (one.usage_count, two.usage_count, three.usage_count) == (1, 0, 1)  # slot 2 was not used
    assert Character.objects.get(pk=pinned.character.pk).clips_used == 1

    # One status call per poll (two IN_QUEUE, one IN_PROGRESS, one COMPLETED), then the result fetched
    # directly: the poll that saw COMPLETED does not ask for the status again.
    request = fake_fal.only_request()
    assert (request.status_polls, request.result_fetches) == (4, 1)
    base = f"/fal-ai/kling-video/requests/{request.request_id}"
    assert [path for method, path in fake_fal.calls if path.startswith(base)][-2:] == [f"{base}/status", base]

    body = api(pinned.contributor).get(f"/api/v1/generate/{job.job_id}").json()
    assert body["status"] == "complete" and body["mode"] == "reference-to-video" and body["cost_usd"] == "0.560"
    result = body["result"]
    assert result["video_url"].endswith(job.video.url) and result["consistency_score"] == job.consistency_score
    assert result["character_id"] == pinned.character.character_id
    assert result["prompt_used"] == "@Element1 looks at @Element2" and result["duration"] == 5
    assert [f["seconds"] for f in result["frame_scores"]] == [f["seconds"] for f in job.frame_scores]

    # A late or repeated poll changes nothing.
    assert poll(job).status == "complete"
    assert PinnedCharacter.objects.get(pk=one.pk).usage_count == 1
    assert Character.objects.get(pk=pinned.character.pk).clips_used == 1


def test_the_same_person_scores_higher_than_a_clip_of_nobody(fake_fal, pinned, generate, no_person_clip):
    fake_fal.script_next()
    same = job_of(generate(pinned.contributor, story_id=pinned.story.pk, prompt="@Element1 smiles"))
    fake_fal.script_next(video=no_person_clip.read_bytes())
    nobody = job_of(generate(pinned.contributor, story_id=pinned.story.pk, prompt="@Element1 smiles"))
    same.refresh_from_db()
    nobody.refresh_from_db()
    assert same.status == nobody.status == "complete"
    assert same.consistency_score >= 60 > 20 >= nobody.consistency_score


# --- Failures, retries and refunds ----------------------------------------------------------------


@pytest.fixture
def eager_retries(celery_eager):
    """Let eager tasks retry the way a worker does: with errors propagating, Celery raises its Retry instead."""
    from config.celery import app

    app.conf.task_eager_propagates = False  # the autouse celery_eager fixture restores it


def test_a_5xx_on_submit_is_retried_and_the_job_submitted_once(fake_fal, pinned, generate, eager_retries):
    fake_fal.script_next(submit_errors=1, queued_polls=None)

    job = job_of(generate(pinned.contributor, story_id=pinned.story.pk, prompt="@Element1 waves"))

    assert [s.status_code for s in fake_fal.submissions] == [500, 200]
    assert len(fake_fal.requests) == 1
    job.refresh_from_db()
    assert job.status == "submitted" and job.attempts == 2
    assert job.provider_request_id == fake_fal.only_request().request_id


def test_on_a_worker_a_job_waits_while_fal_is_down_and_the_stale_sweep_submits_it_once(fake_fal, pinned):
    down = fake_fal.script_next(submit_errors=1000, queued_polls=None)
    job = services.generation_create(requester=pinned.contributor, story=pinned.story, prompt="@Element1 waves")

    for _ in range(3):  # a worker's try and retries: something will try again, so the job waits
        with pytest.raises(TransientProviderError, match="fal answered 500"):
            services.generation_submit(job_pk=job.pk, retried_later=True)

    job.refresh_from_db()
    assert (job.status, job.provider_request_id, job.attempts) == ("queued", "", 3)
    assert job.submit_started_at is None  # fal surely did not take it: a retry may send it
    assert len(fake_fal.submissions) == 3 and fake_fal.requests == {}

    down.submit_errors = 0  # fal is back
    GenerationJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert tasks.poll_stale_jobs.delay().get() == {"submitted": 1, "polled": 0}
    tasks.poll_stale_jobs.delay()  # nothing is stale any more

    job.refresh_from_db()
    assert job.status == "submitted" and len(fake_fal.requests) == 1


@pytest.mark.parametrize("retries", [False, True], ids=["errors-propagate", "eager-retries"])
def test_with_eager_tasks_fal_staying_down_fails_the_job_and_gives_the_use_back(
    fake_fal, licensed, generate, retries, request
):
    """No worker, no sweep: nothing would ever retry the job, so it ends with fal's message instead."""
    if retries:
        request.getfixturevalue("eager_retries")
    character, buyer, story, license = licensed
    fake_fal.script_next(submit_errors=1000, queued_polls=None)

    job = job_of(generate(buyer, story_id=story.pk, character_id=character.character_id, prompt="She jumps"))

    job.refresh_from_db()
    assert job.status == "failed" and fake_fal.requests == {}
    assert "fal answered 500" in job.error and "try again" in job.error
    # Celery's eager retries run back to back (the first try and eight retries); with errors propagating
    # (the embedded default) the first retry is raised instead of run, so there is one try.
    assert len(fake_fal.submissions) == (9 if retries else 1) == job.attempts
    assert uses_left(license) == 10
    assert LicenseUse.objects.get(job_ref=job.job_id).refunded_at is not None
    body = api(buyer).get(f"/api/v1/generate/{job.job_id}").json()
    assert body["status"] == "failed" and "fal answered 500" in body["error"]


def test_with_eager_tasks_reading_the_job_moves_it_on_and_a_5xx_only_delays_it(
    fake_fal, pinned, generate, settings, good_clip
):
    """No worker, no beat, no webhook reaching us: the job's live status (page and API) asks fal again."""
    settings.GENERATION_USE_WEBHOOKS = False
    settings.GENERATION_POLL_SECONDS = 0
    fake_fal.script_next(queued_polls=0, status_errors=2)  # fal is done at once, but answers 503 twice first

    job = job_of(generate(pinned.contributor, story_id=pinned.story.pk, prompt="@Element1 waves"))
    job.refresh_from_db()
    assert job.status == "submitted"  # the first poll, right after the submission, got a 503
    request = fake_fal.only_request()
    status_url = f"/api/v1/generate/{job.job_id}"

    body = api(pinned.contributor).get(status_url).json()  # the next read gets the second 503
    assert body["status"] == "submitted" and body["result"] is None
    assert (request.status_polls, request.result_fetches) == (0, 0)

    body = api(pinned.contributor).get(status_url).json()  # and this one finds it done
    assert body["status"] == "complete", body
    assert (request.status_polls, request.result_fetches) == (1, 1)
    job.refresh_from_db()
    assert default_storage.open(job.video.name).read() == good_clip.read_bytes()
    # Read again: nothing more is asked of fal.
    assert api(pinned.contributor).get(status_url).json()["status"] == "complete"
    assert (request.status_polls, request.result_fetches) == (1, 1)


def test_on_a_worker_reading_a_job_does_not_poll_fal(fake_fal, pinned, generate, settings):
    fake_fal.script_next(queued_polls=None)
    job = job_of(generate(pinned.contributor, story_id=pinned.story.pk, prompt="@Element1 waves"))
    polls = fake_fal.only_request().status_polls
    settings.GENERATION_POLL_SECONDS = 0
    settings.CELERY_TASK_ALWAYS_EAGER = False  # a worker follows the job: reads leave it alone

    assert api(pinned.contributor).get(f"/api/v1/generate/{job.job_id}").json()["status"] == "submitted"
    assert fake_fal.only_request().status_polls == polls


def test_completed_then_422_fails_the_job_with_fals_message_and_refunds_the_use(fake_fal, licensed, generate):
    character, buyer, story, license = licensed
    detail = [{"loc": ["body", "image_url"], "msg": "Image must be at least 300x300 pixels", "type": "value_error"}]
    fake_fal.script_next(queued_polls=0, result_status=422, result_detail=detail)

    job = job_of(generate(buyer, story_id=story.pk, character_id=character.character_id, prompt="She jumps"))

    job.refresh_from_db()
    assert job.status == "failed"
    assert "image_url: Image must be at least 300x300 pixels" in job.error  # fal's words, readable
    assert fake_fal.only_request().result_fetches == 1
    assert not job.video and job.consistency_score is None
    assert uses_left(license) == 10
    assert LicenseUse.objects.get(job_ref=job.job_id).refunded_at is not None
    assert Character.objects.get(pk=character.pk).clips_used == 0
    body = api(buyer).get(f"/api/v1/generate/{job.job_id}").json()
    assert body["status"] == "failed" and "300x300" in body["error"] and body["result"] is None


def test_a_submission_fal_refuses_fails_at_once_without_retrying(fake_fal, licensed, generate):
    character, buyer, story, license = licensed
    fake_fal.script_next(submit_status=422, submit_detail="prompt: too long for this model")

    job = job_of(generate(buyer, story_id=story.pk, character_id=character.character_id, prompt="She jumps"))

    job.refresh_from_db()
    assert job.status == "failed" and "too long for this model" in job.error
    assert len(fake_fal.submissions) == 1 and uses_left(license) == 10


def test_a_result_video_on_a_private_address_is_not_fetched(fake_fal, licensed, generate, settings):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = []  # loopback is private, as in production
    character, buyer, story, license = licensed

    job = job_of(generate(buyer, story_id=story.pk, character_id=character.character_id, prompt="She jumps"))

    job.refresh_from_db()
    assert job.status == "failed" and "loopback" in job.error
    assert not [path for _, path in fake_fal.calls if path.startswith("files:/files/")]
    assert uses_left(license) == 10


def test_a_result_that_is_not_a_video_fails_the_job(fake_fal, licensed, generate):
    character, buyer, story, license = licensed
    fake_fal.script_next(video=b"<html>not a video</html>")

    job = job_of(generate(buyer, story_id=story.pk, character_id=character.character_id, prompt="She jumps"))

    job.refresh_from_db()
    assert job.status == "failed" and "video" in job.error.lower()
    assert not job.video and uses_left(license) == 10


# --- Idempotency and cancelling --------------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_same_job(fake_fal, licensed, generate):
    character, buyer, story, license = licensed
    fake_fal.default_script.queued_polls = None
    request = {
        "story_id": story.pk,
        "character_id": character.character_id,
        "prompt": "She jumps",
        "idempotency_key": "retry-me-123",
    }

    first = generate(buyer, **request)
    again = generate(buyer, **request | {"prompt": "Something else entirely"})

    assert first.status_code == again.status_code == 202
    assert first.json()["job_id"] == again.json()["job_id"]
    assert GenerationJob.objects.count() == 1 and len(fake_fal.submissions) == 1
    assert uses_left(license) == 9
    other = UserFactory(username="other")
    assert (
        generate(
            other, story_id=StoryFactory(created_by=other).pk, prompt="Rain", idempotency_key="retry-me-123"
        ).json()["job_id"]
        != first.json()["job_id"]
    )


def test_cancelling_stops_the_request_at_fal_and_refunds_the_use(fake_fal, licensed, generate):
    character, buyer, story, license = licensed
    fake_fal.script_next(queued_polls=None)
    job = job_of(generate(buyer, story_id=story.pk, character_id=character.character_id, prompt="She jumps"))
    request_id = fake_fal.only_request().request_id

    assert api(UserFactory(username="nosy")).post(f"/api/v1/generate/{job.job_id}/cancel").status_code == 404
    response = api(buyer).post(f"/api/v1/generate/{job.job_id}/cancel")

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert ("PUT", f"/fal-ai/kling-video/requests/{request_id}/cancel") in fake_fal.calls
    assert fake_fal.only_request().cancelled
    assert uses_left(license) == 10
    assert api(buyer).post(f"/api/v1/generate/{job.job_id}/cancel").status_code == 409
    # What fal says afterwards changes nothing.
    assert poll(job).status == "cancelled"
    assert Character.objects.get(pk=character.pk).clips_used == 0


# --- Webhooks ---------------------------------------------------------------------------------------


def post_webhook(client, body: bytes, headers: dict):
    return client.post(WEBHOOK_PATH, data=body, content_type="application/json", headers=headers)


def snapshot(job: GenerationJob) -> tuple:
    job.refresh_from_db()
    pins = tuple(PinnedCharacter.objects.order_by("pk").values_list("usage_count", flat=True))
    uses = tuple(Character.objects.order_by("pk").values_list("clips_used", flat=True))
    return (job.status, job.progress, job.video.name, job.consistency_score, job.error, job.completed_at, pins, uses)


@pytest.fixture
def held_job(fake_fal, pinned, generate) -> GenerationJob:
    """A job fal holds in its queue until the test says it is done."""
    fake_fal.script_next(queued_polls=None)
    job = job_of(generate(pinned.contributor, story_id=pinned.story.pk, prompt="@Element1 waves"))
    job.refresh_from_db()
    assert job.status == "submitted"
    return job


def test_a_signed_webhook_completes_the_job_once(fake_fal, held_job, pinned, client, good_clip):
    fake_fal.complete(held_job.provider_request_id)
    body, headers = fake_fal.webhook_delivery(held_job.provider_request_id)

    response = post_webhook(client, body, headers)

    assert response.status_code == 200 and response.json() == {"ok": True, "outcome": "completing"}
    held_job.refresh_from_db()
    assert held_job.status == "complete" and held_job.consistency_score is not None
    assert default_storage.open(held_job.video.name).read() == good_clip.read_bytes()
    done = snapshot(held_job)
    assert done[6:] == ((1, 0, 1), (1,))  # pins 1 and 3 were used (2 is deactivated), and the character

    # fal delivers again: the same delivery (a replay) and a fresh signature of the same event.
    assert post_webhook(client, body, headers).json()["outcome"] == "duplicate"
    assert post_webhook(client, *fake_fal.webhook_delivery(held_job.provider_request_id)).json()["outcome"] == (
        "already_finished"
    )
    assert snapshot(held_job) == done
    assert WebhookDelivery.objects.filter(request_id=held_job.provider_request_id).count() == 2


def test_the_webhooks_video_url_is_never_used(fake_fal, held_job, client, good_clip):
    fake_fal.complete(held_job.provider_request_id)
    body, _ = fake_fal.webhook_delivery(held_job.provider_request_id)
    body = body.replace(
        fake_fal.video_url(held_job.provider_request_id).encode(), b"http://169.254.169.254/latest/meta-data/iam"
    )
    headers = fake_fal.signer.headers(held_job.provider_request_id, body)

    assert post_webhook(client, body, headers).status_code == 200

    held_job.refresh_from_db()
    assert held_job.status == "complete"
    assert default_storage.open(held_job.video.name).read() == good_clip.read_bytes()


def forged_delivery(fake, request_id: str, how: str) -> tuple[bytes, dict]:
    body, headers = fake.webhook_delivery(request_id)
    if how == "other-key":
        return fake.webhook_delivery(request_id, signer=WebhookSigner())
    if how == "stale":
        return fake.webhook_delivery(request_id, timestamp=int(time.time()) - 6 * 60)
    if how == "future":
        return fake.webhook_delivery(request_id, timestamp=int(time.time()) + 6 * 60)
    if how == "body-changed":
        return body.replace(b'"OK"', b'"OK" '), headers
    if how == "request-id-changed":
        return body, headers | {"X-Fal-Webhook-Request-Id": "0123456789abcdef"}
    assert how == "unsigned"
    return body, {}


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("other-key", "signature does not match"),
        ("stale", "too far from now"),
        ("future", "too far from now"),
        ("body-changed", "signature does not match"),
        ("request-id-changed", "signature does not match"),
        ("unsigned", "Missing header"),
    ],
)
def test_forged_stale_or_unsigned_webhooks_are_rejected_and_change_nothing(fake_fal, held_job, client, how, words):
    fake_fal.complete(held_job.provider_request_id)
    before = snapshot(held_job)

    response = post_webhook(client, *forged_delivery(fake_fal, held_job.provider_request_id, how))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature" and words in response.json()["error"]["message"]
    assert snapshot(held_job) == before and not WebhookDelivery.objects.exists()
    assert fake_fal.only_request().result_fetches == 0


def test_a_webhook_for_an_unknown_request_changes_nothing(fake_fal, held_job, client):
    before = snapshot(held_job)
    body, headers = fake_fal.webhook_delivery("0123456789abcdef")

    response = post_webhook(client, body, headers)

    assert response.status_code == 200 and response.json()["outcome"] == "unknown_request"
    assert snapshot(held_job) == before and fake_fal.only_request().result_fetches == 0


def test_a_webhook_whose_body_names_another_request_is_refused(fake_fal, held_job, client):
    before = snapshot(held_job)
    body, headers = fake_fal.webhook_delivery(held_job.provider_request_id, body_request_id="someone-else")
    assert post_webhook(client, body, headers).status_code == 400
    assert snapshot(held_job) == before


def test_an_error_webhook_fails_the_job_with_fals_message(fake_fal, licensed, generate, client):
    character, buyer, story, license = licensed
    fake_fal.script_next(queued_polls=None)
    job = job_of(generate(buyer, story_id=story.pk, character_id=character.character_id, prompt="She jumps"))
    assert uses_left(license) == 9

    body, headers = fake_fal.webhook_delivery(
        fake_fal.only_request().request_id, status="ERROR", error="Content policy violation"
    )
    response = post_webhook(client, body, headers)

    assert response.json()["outcome"] == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and "Content policy violation" in job.error
    assert uses_left(license) == 10


@pytest.mark.django_db(transaction=True)
def test_fal_posts_the_webhook_to_our_endpoint_and_the_job_completes(fake_fal, good_clip, live_server, settings):
    """The whole loop over real HTTP: fal is told our webhook URL, POSTs the signed delivery to it."""
    settings.SITE_URL = live_server.url
    world = pinned_story(good_clip, [(1, 1)])
    fake_fal.script_next(queued_polls=None)

    job = services.generation_create(requester=world.contributor, story=world.story, prompt="@Element1 waves")

    job.refresh_from_db()
    request = fake_fal.only_request()
    assert job.status == "submitted" and request.webhook_url == f"{live_server.url}{WEBHOOK_PATH}?job={job.job_id}"
    fake_fal.complete(request.request_id)
    body, headers = fake_fal.webhook_delivery(request.request_id)
    answers = [
        requests.post(
            request.webhook_url, data=body, timeout=120, headers=headers | {"Content-Type": "application/json"}
        )
        for _ in range(2)
    ]

    assert [a.json()["outcome"] for a in answers] == ["completing", "duplicate"]
    job.refresh_from_db()
    assert job.status == "complete" and job.consistency_score is not None and len(job.frame_scores) >= 3
    assert default_storage.open(job.video.name).read() == good_clip.read_bytes()
    assert PinnedCharacter.objects.get(pk=world.pins[0].pk).usage_count == 1
    assert Character.objects.get(pk=world.character.pk).clips_used == 1
    # A later delivery (a new timestamp, so a new signature: within the same second it would be the same one).
    later = int(time.time()) + 1
    assert fake_fal.deliver_webhook(request.request_id, timestamp=later)[1]["outcome"] == "already_finished"
    assert Character.objects.get(pk=world.character.pk).clips_used == 1


# --- Submitting at most once: a worker killed after fal accepted --------------------------------------


class WorkerKilled(BaseException):
    """What `kill -9` does to a task mid-call: nothing of ours runs after it (no `except Exception` sees it)."""


@pytest.fixture
def killed_after_fal_accepts(monkeypatch):
    """The next submission reaches fal, which queues it, and the worker dies before it hears the answer.

    Returns a function that brings a healthy worker back (the one that picks up the redelivered task)."""
    from generation.providers.fal import FalProvider

    original = FalProvider.submit

    def submit_then_die(self, request):
        original(self, request)
        raise WorkerKilled

    monkeypatch.setattr(FalProvider, "submit", submit_then_die)
    return lambda: monkeypatch.setattr(FalProvider, "submit", original)


def submitted_and_killed(user, story, prompt: str, **kwargs) -> GenerationJob:
    job = services.generation_create(requester=user, story=story, prompt=prompt, **kwargs)
    with pytest.raises(WorkerKilled):
        services.generation_submit(job_pk=job.pk)
    job.refresh_from_db()
    return job


def worker_died_long_ago(job: GenerationJob) -> None:
    """Time passes: past the submit task's time limit, no delivery can still be sending the job."""
    past = timezone.now() - timedelta(seconds=services.SUBMIT_CALL_LIMIT_SECONDS + 60)
    GenerationJob.objects.filter(pk=job.pk).update(submit_started_at=past, updated_at=past)


def post_to(client, url: str, body: bytes, headers: dict):
    parts = urlsplit(url)
    return client.post(f"{parts.path}?{parts.query}", data=body, content_type="application/json", headers=headers)


def test_a_killed_submission_is_not_sent_again_and_fals_webhook_completes_the_job(
    fake_fal, pinned, client, killed_after_fal_accepts, good_clip
):
    fake_fal.script_next(queued_polls=None)
    job = submitted_and_killed(pinned.contributor, pinned.story, "@Element1 waves")
    (accepted,) = fake_fal.accepted
    assert job.submission_unconfirmed and job.attempts == 1 and job.provider_request_id == ""

    healthy = killed_after_fal_accepts()  # noqa: F841 -- the next worker is healthy
    tasks.submit_generation_job.delay(job.pk)  # acks_late: the task is delivered again at once...
    worker_died_long_ago(job)
    tasks.submit_generation_job.delay(job.pk)  # ...and again much later,
    assert tasks.poll_stale_jobs.delay().get() == {"submitted": 1, "polled": 0}  # and the sweep finds the job

    assert len(fake_fal.submissions) == 1, "a submission whose outcome is unknown must not be sent again"
    job.refresh_from_db()
    assert job.status == "queued" and job.submission_unconfirmed and job.attempts == 1
    client.force_login(pinned.contributor)
    assert "Waiting for the provider to confirm" in client.get(job.get_absolute_url()).content.decode()

    # fal finishes and posts its webhook to the URL it was given, which names our job.
    fake_fal.complete(accepted.request_id)
    body, headers = fake_fal.webhook_delivery(accepted.request_id)
    response = post_to(client, accepted.webhook_url, body, headers)

    assert response.status_code == 200 and response.json()["outcome"] == "adopted, completing"
    job.refresh_from_db()
    assert job.status == "complete", job.error
    assert job.provider_request_id == accepted.request_id and job.consistency_score is not None
    assert default_storage.open(job.video.name).read() == good_clip.read_bytes()
    assert fake_fal.only_request().result_fetches == 1 and len(fake_fal.submissions) == 1
    assert PinnedCharacter.objects.get(pk=pinned.pins[0].pk).usage_count == 1
    # fal retries its webhook: nothing happens twice.
    assert (
        post_to(client, accepted.webhook_url, *fake_fal.webhook_delivery(accepted.request_id)).json()["outcome"]
        == "already_finished"
    )
    assert PinnedCharacter.objects.get(pk=pinned.pins[0].pk).usage_count == 1


def test_without_webhooks_a_killed_submission_fails_and_gives_the_use_back_rather_than_risk_a_second_clip(
    fake_fal, licensed, settings, killed_after_fal_accepts
):
    settings.GENERATION_USE_WEBHOOKS = False
    character, buyer, story, license = licensed
    fake_fal.script_next(queued_polls=None)
    job = submitted_and_killed(buyer, story, "She jumps", character_id=character.character_id)
    assert uses_left(license) == 9
    killed_after_fal_accepts()

    tasks.submit_generation_job.delay(job.pk)  # delivered again while the call might still be running
    job.refresh_from_db()
    assert job.status == "queued" and len(fake_fal.submissions) == 1

    worker_died_long_ago(job)
    tasks.poll_stale_jobs.delay()

    job.refresh_from_db()
    assert job.status == "failed" and "not sent again" in job.error and "ask for the clip again" in job.error
    assert len(fake_fal.submissions) == 1 and uses_left(license) == 10


@pytest.mark.parametrize("finder", ["stale-sweep", "reading-the-job"])
def test_a_killed_submission_no_webhook_ever_names_fails_at_the_timeout(
    fake_fal, licensed, client, killed_after_fal_accepts, finder
):
    character, buyer, story, license = licensed
    fake_fal.script_next(queued_polls=None)
    job = submitted_and_killed(buyer, story, "She jumps", character_id=character.character_id)
    (accepted,) = fake_fal.accepted
    killed_after_fal_accepts()
    worker_died_long_ago(job)
    tasks.poll_stale_jobs.delay()
    job.refresh_from_db()
    assert job.status == "queued", "with webhooks, the job waits for fal's webhook until the timeout"

    late = timezone.now() - timedelta(minutes=settings_timeout() + 1)
    GenerationJob.objects.filter(pk=job.pk).update(created_at=late, updated_at=late)
    if finder == "stale-sweep":  # a worker's beat
        tasks.poll_stale_jobs.delay()
    else:  # eager tasks: no beat runs, reading the job ends it
        assert api(buyer).get(f"/api/v1/generate/{job.job_id}").json()["status"] == "failed"

    job.refresh_from_db()
    assert job.status == "failed" and "did not finish within" in job.error
    assert uses_left(license) == 10 and len(fake_fal.submissions) == 1
    # A webhook arriving after that changes nothing.
    fake_fal.complete(accepted.request_id)
    outcome = post_to(client, accepted.webhook_url, *fake_fal.webhook_delivery(accepted.request_id)).json()
    assert outcome["outcome"] == "unknown_request"
    job.refresh_from_db()
    assert job.status == "failed" and job.provider_request_id == "" and uses_left(license) == 10


def settings_timeout() -> int:
    from django.conf import settings

    return settings.GENERATION_TIMEOUT_MINUTES


def test_a_webhook_url_naming_a_job_that_knows_its_request_changes_nothing(fake_fal, held_job, client):
    before = snapshot(held_job)
    body, headers = fake_fal.webhook_delivery("0123456789abcdef")

    response = client.post(
        f"{WEBHOOK_PATH}?job={held_job.job_id}", data=body, content_type="application/json", headers=headers
    )

    assert response.status_code == 200 and response.json()["outcome"] == "unknown_request"
    assert snapshot(held_job) == before and held_job.provider_request_id != "0123456789abcdef"


@pytest.mark.parametrize("webhooks", [True, False])
def test_two_deliveries_of_the_submit_task_at_once_send_the_job_once(fake_fal, pinned, monkeypatch, settings, webhooks):
    from generation.providers.fal import FalProvider

    settings.GENERATION_USE_WEBHOOKS = webhooks
    fake_fal.script_next(queued_polls=None)
    job = services.generation_create(requester=pinned.contributor, story=pinned.story, prompt="@Element1 waves")
    original, seen_by_the_other = FalProvider.submit, []

    def submit_while_another_delivery_runs(self, request):
        seen_by_the_other.append(services.generation_submit(job_pk=job.pk).status)
        return original(self, request)

    monkeypatch.setattr(FalProvider, "submit", submit_while_another_delivery_runs)
    assert services.generation_submit(job_pk=job.pk).status == "submitted"

    assert seen_by_the_other == ["queued"]  # it left the claimed job alone: neither sent it nor failed it
    assert len(fake_fal.submissions) == 1
    job.refresh_from_db()
    assert job.status == "submitted" and job.attempts == 1


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (httpx.ReadTimeout("read timed out"), "unknown"),
        (httpx.RemoteProtocolError("peer closed"), "unknown"),
        (httpx.ConnectError("connection refused"), "retry"),
        (httpx.ConnectTimeout("connect timed out"), "retry"),
    ],
)
def test_a_broken_connection_after_the_request_left_is_never_retried_blindly(
    fake_fal, licensed, monkeypatch, settings, error, outcome
):
    """A read timeout or a dropped answer: fal may have the request. A refused connection: it surely has not."""
    settings.GENERATION_USE_WEBHOOKS = False
    import fal_client

    character, buyer, story, license = licensed

    def broken(*args, **kwargs):  # what httpx raises to fal_client's submit once its own retries are spent
        raise error

    job = services.generation_create(
        requester=buyer, story=story, prompt="She jumps", character_id=character.character_id
    )
    monkeypatch.setattr(fal_client.SyncClient, "submit", broken)
    if outcome == "retry":
        with pytest.raises(TransientProviderError, match="could not be reached"):
            services.generation_submit(job_pk=job.pk, retried_later=True)
        job.refresh_from_db()
        assert job.status == "queued" and job.submit_started_at is None and uses_left(license) == 9
    else:
        done = services.generation_submit(job_pk=job.pk, retried_later=True)
        assert done.status == "failed" and "not sent again" in done.error and uses_left(license) == 10


# --- Pins only on request: the pinning settings' auto_switch_model off -------------------------------


@pytest.fixture
def no_auto_switch():
    from characters.models import PinningSettings

    PinningSettings.objects.filter(pk=PinningSettings.SINGLETON_PK).update(auto_switch_model=False)


def test_without_automatic_switching_pins_are_used_only_when_asked_for(fake_fal, pinned, generate, no_auto_switch):
    fake_fal.default_script.queued_polls = None
    quote = (
        api(pinned.contributor)
        .post("/api/v1/generate/quote", {"story_id": pinned.story.pk, "prompt": "She runs"}, format="json")
        .json()
    )
    assert quote["mode"] == "image-to-video" and quote["pins_on_request"] is True
    assert quote["pinned_elements"] == [] and quote["cost_usd"] == "0.350"
    assert quote["available_pinned_elements"] == [
        {"element_index": 1, "label": "Hero 1"},
        {"element_index": 3, "label": "Hero 3"},
    ]
    assert quote["reference_cost_usd"] == "0.560"  # the premium warning: what the pins would cost

    default = job_of(generate(pinned.contributor, story_id=pinned.story.pk, prompt="She runs"))
    asked = job_of(generate(pinned.contributor, story_id=pinned.story.pk, prompt="She runs", use_pins=True))
    opted_out = job_of(generate(pinned.contributor, story_id=pinned.story.pk, prompt="She runs", use_pins=False))

    assert [s.endpoint for s in fake_fal.submissions] == [I2V_MODEL, REF_MODEL, T2V_MODEL]
    assert "elements" not in fake_fal.submissions[0].arguments
    assert fake_fal.submissions[0].arguments["start_image_url"] == reference_url(pinned.character, "full_body")
    assert fake_fal.submissions[1].arguments["prompt"] == "@Element1 @Element2 She runs"
    for job, mode, pins in (
        (default, "image-to-video", []),
        (asked, "reference-to-video", [pinned.pins[0].pk, pinned.pins[2].pk]),
        (opted_out, "text-to-video", []),
    ):
        job.refresh_from_db()
        assert (job.mode, job.pinned_character_ids) == (mode, pins)


def test_with_automatic_switching_pins_are_used_unless_the_contributor_opts_out(fake_fal, pinned, generate):
    fake_fal.default_script.queued_polls = None
    quote = (
        api(pinned.contributor)
        .post("/api/v1/generate/quote", {"story_id": pinned.story.pk, "prompt": "She runs"}, format="json")
        .json()
    )
    assert quote["mode"] == "reference-to-video" and quote["pins_on_request"] is False
    assert quote["reference_cost_usd"] is None and len(quote["pinned_elements"]) == 2

    for use_pins in (None, True):
        body = {"use_pins": use_pins} if use_pins is not None else {}
        job_of(generate(pinned.contributor, story_id=pinned.story.pk, prompt="She runs", **body))
    assert [s.endpoint for s in fake_fal.submissions] == [REF_MODEL, REF_MODEL]
