"""Generation on Replicate through the real `replicate` client, against the fake Replicate API on loopback."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from generation.models import GenerationJob, WebhookDelivery
from tests.support.fake_replicate import make_secret
from tests.support.generation_providers import SITE, job_of, poll, snapshot

MODEL = "kwaivgi/kling-v2.1"
WEBHOOK = "/api/v1/generate/webhooks/replicate"

pytestmark = pytest.mark.django_db


def post_webhook(headers: dict, body: bytes, job: GenerationJob):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return Client().post(f"{WEBHOOK}?job={job.job_id}", body, content_type="application/json", **extra)


def test_the_builders_payload_goes_out_and_the_job_completes_by_polling(fake_replicate, provider_generate):
    job = job_of(provider_generate(MODEL))
    assert job.provider == "replicate" and job.cost_usd == job.would_cost_usd > 0

    (submission,) = fake_replicate.submissions()
    assert submission.path == f"/v1/models/{MODEL}/predictions"
    assert submission.headers["authorization"] == "Bearer r8_test-token"
    sent = submission.json()
    assert sent["input"] == job.arguments
    assert sent["input"]["start_image"].startswith(SITE) and sent["input"]["mode"] == "standard"
    assert sent["input"]["duration"] == 5
    assert sent["webhook"] == f"{SITE}{WEBHOOK}?job={job.job_id}"
    assert sent["webhook_events_filter"] == ["completed"]

    for _ in range(3):
        if job.status == GenerationJob.Status.COMPLETE:
            break
        job = poll(job)
    assert job.status == GenerationJob.Status.COMPLETE, job.error
    assert job.video and job.video.size > 10_000  # copied into our storage
    assert job.consistency_score is not None


def test_a_payload_replicate_refuses_fails_the_job_with_its_message(fake_replicate, provider_generate, settings):
    # A schema the builder's body no longer fits (as if Replicate renamed the field): the fake answers 422.
    from generation import payloads

    real = payloads.validation_errors
    fake_replicate.validate = lambda model, body: real(model, {**(body or {}), "cfg_scale": 2})
    try:
        job = job_of(provider_generate(MODEL))
    finally:
        fake_replicate.validate = real
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.FAILED
    assert "The provider refused the request: Replicate:" in job.error and "cfg_scale" in job.error


@pytest.fixture
def held_job(fake_replicate, provider_generate):
    fake_replicate.script_next(["starting"])  # stays starting until the webhook says otherwise
    job = job_of(provider_generate(MODEL))
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.SUBMITTED
    return job


def test_a_signed_webhook_completes_the_job_once(fake_replicate, held_job):
    fake_replicate.set_state(held_job.provider_request_id, "succeeded")
    headers, body = fake_replicate.signed_delivery(held_job.provider_request_id)

    response = post_webhook(headers, body, held_job)

    assert response.status_code == 200 and response.json()["outcome"] == "completing"
    held_job.refresh_from_db()
    assert held_job.status == GenerationJob.Status.COMPLETE and held_job.video
    # The same delivery again (same webhook-id): seen, nothing happens.
    again = post_webhook(headers, body, held_job)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert WebhookDelivery.objects.filter(provider="replicate").count() == 1


@pytest.mark.parametrize("forgery", ["bad_signature", "old_timestamp", "other_secret", "no_signature"])
def test_a_webhook_we_cannot_trust_is_refused_and_changes_nothing(fake_replicate, held_job, forgery):
    fake_replicate.set_state(held_job.provider_request_id, "succeeded")
    before = snapshot(held_job)
    kwargs = {"old_timestamp": {"timestamp": int(time.time()) - 3600}, "other_secret": {"secret": make_secret()}}
    headers, body = fake_replicate.signed_delivery(held_job.provider_request_id, **kwargs.get(forgery, {}))
    if forgery == "bad_signature":
        body = body.replace(b'"succeeded"', b'"failed"', 1)  # tampered after signing
    if forgery == "no_signature":
        headers.pop("webhook-signature")

    response = post_webhook(headers, body, held_job)

    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "bad_signature"
    assert snapshot(held_job) == before
    assert not WebhookDelivery.objects.exists()


def test_a_replayed_webhook_id_is_refused(fake_replicate, held_job):
    """A delivery id seen once is never acted on again, even re-signed with a fresh timestamp and another body."""
    headers, body = fake_replicate.signed_delivery(
        held_job.provider_request_id, state="processing", webhook_id="msg_once"
    )
    assert post_webhook(headers, body, held_job).json()["outcome"] == "ignored"
    before = snapshot(held_job)
    headers, body = fake_replicate.signed_delivery(held_job.provider_request_id, state="failed", webhook_id="msg_once")
    response = post_webhook(headers, body, held_job)
    assert response.json()["outcome"] == "duplicate"
    assert snapshot(held_job) == before


def test_a_webhooks_word_is_not_taken_for_the_result(fake_replicate, held_job):
    """A signed 'succeeded' while Replicate (asked with our token) says it is still starting completes nothing:
    the webhook only makes us ask."""
    headers, body = fake_replicate.signed_delivery(held_job.provider_request_id, state="succeeded")
    assert post_webhook(headers, body, held_job).json()["outcome"] == "completing"
    held_job.refresh_from_db()
    assert held_job.status == GenerationJob.Status.SUBMITTED and not held_job.video


def test_the_api_and_the_create_page_offer_the_models_whose_provider_has_a_key(
    fake_replicate, settings, provider_world, client
):
    settings.FAL_KEY = ""
    settings.RUNWAYML_API_SECRET = ""
    settings.LUMAAI_API_KEY = ""
    user, story, _ = provider_world
    from tests.support.generation_providers import api

    offered = {m["model_id"]: m for m in api(user).get("/api/v1/generate/models").json()}
    assert offered[MODEL]["runs_on"] == "replicate" and offered[MODEL]["usd_per_second"] == "0.050"
    assert offered[MODEL]["mode"] == "image-to-video" and offered[MODEL]["durations"] == [5, 10]
    assert offered[MODEL]["webhooks"] is True
    # Its price is not confirmed from Replicate's own page: the API, the quote and the page say so.
    assert "Replicate's price" in offered[MODEL]["price_note"]
    quote = (
        api(user)
        .post("/api/v1/generate/quote", {"story_id": story.pk, "prompt": "x", "model_id": MODEL}, format="json")
        .json()
    )
    assert quote["summary"].endswith(f"Price not confirmed: {offered[MODEL]['price_note']}.")
    assert "gen4_turbo" not in offered and "ray-2" not in offered  # no key: not offered
    default = settings.GENERATION_MODEL_FOR_MODE["image-to-video"]
    assert offered[default]["runs_on"] == "offline" and offered[default]["offline_preview"] is True
    assert offered[default]["price_note"] == ""  # fal's own page gives its price

    refused = api(user).post(
        "/api/v1/generate", {"story_id": story.pk, "prompt": "x", "model_id": "gen4_turbo"}, format="json"
    )
    assert refused.status_code == 400 and "not offered here" in refused.json()["error"]["message"]
    assert not GenerationJob.objects.exists()

    client.force_login(user)
    page = client.get(f"/stories/{story.pk}/create/").content.decode()
    assert "Kling v2.1 image-to-video on Replicate — Replicate, image-to-video, $0.050/s (price not confirmed)" in page
    assert "Runway" not in page
