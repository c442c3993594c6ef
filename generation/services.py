"""Generation jobs: create (with the mode decision and the license use), submit, follow, complete, fail.

Every entry point (page, API, tasks, webhook) goes through these. A job moves
queued -> submitted -> processing -> complete | failed | cancelled, and each move is a conditional
update or happens under the job's row lock, so a webhook and a poll finishing the same job at
once, or a retried task, complete it exactly once.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from characters import pinning
from characters.dna_services import character_record_use, reference_url
from characters.models import Character, PinnedCharacter, ReferenceImage, Story
from characters.video import InvalidVideo, probe_video
from common.exceptions import NotFound, ServiceError
from marketplace import services as marketplace

from . import prompts
from .models import GenerationJob, WebhookDelivery
from .providers import ProviderFailed, ProviderRequest, TransientProviderError, get_provider

logger = logging.getLogger(__name__)

Status = GenerationJob.Status
ACTIVE_STATUSES = (Status.QUEUED, Status.SUBMITTED, Status.PROCESSING)
# Typical provider time for a 5 s clip, per mode; 10 s clips take about twice as long.
BASE_ESTIMATE_SECONDS = {"reference-to-video": 150, "image-to-video": 110, "text-to-video": 90}


class GenerationError(ServiceError):
    code = "generation_error"


# --- Inputs for the plan -------------------------------------------------------------------------

def _absolute(url: str) -> str:
    return url if urlsplit(url).scheme else settings.SITE_URL.rstrip("/") + url


def _pin_inputs(pins: list[PinnedCharacter]) -> list[prompts.PinInput]:
    return [
        prompts.PinInput(
            pin_id=pin.pk, element_index=pin.element_index, label=pin.label,
            frontal_url=_absolute(pin.frontal_image.url),
            angle_urls=tuple(_absolute(angle.image.url) for angle in pin.angles.all()),
        )
        for pin in pins
    ]


def _character_input(character: Character) -> prompts.CharacterInput:
    kinds = {ref.kind for ref in character.reference_images.all() if ref.kind != ReferenceImage.Kind.EXTRA_ANGLE}
    return prompts.CharacterInput(
        character_id=character.character_id,
        style_description=character.style_description,
        locked_features=tuple(character.locked_features),
        palette=dict(character.color_palette),
        reference_urls={kind: reference_url(character, kind) for kind in kinds},
    )


def _story_character(story: Story, character_id: str | None) -> Character | None:
    """The character asked for (canonical), or else the story's own latest canonical character."""
    canonical = Character.objects.filter(status=Character.Status.CANONICAL).prefetch_related("reference_images")
    if character_id:
        character = canonical.filter(character_id=character_id).first()
        if character is None:
            raise NotFound(f"There is no canonical character '{character_id}'.")
        return character
    return canonical.filter(story=story).order_by("-created_at").first()


@dataclass(frozen=True)
class Quote:
    plan: prompts.GenerationPlan
    character: Character | None
    pins: list[PinnedCharacter]

    @property
    def cost_usd(self) -> Decimal:
        return self.plan.cost_usd


def generation_quote(
    *, story: Story, prompt: str, duration: int = 5, aspect_ratio: str = "16:9", use_pins: bool = True,
    character_id: str | None = None,
) -> Quote:
    """What a request would run and cost, before anything is spent (the create page shows this)."""
    character = _story_character(story, character_id)
    pins = pinning.story_active_pins(story) if use_pins else []
    try:
        plan = prompts.plan_generation(
            prompt=prompt, duration=duration, aspect_ratio=aspect_ratio, use_locks=use_pins,
            pins=_pin_inputs(pins), character=_character_input(character) if character else None,
        )
    except prompts.PlanError as exc:
        raise GenerationError(str(exc), code="invalid_request") from None
    used_pins = [p for p in pins if p.pk in plan.pin_ids]
    return Quote(plan=plan, character=character if plan.mode != "text-to-video" else None, pins=used_pins)


# --- Create ------------------------------------------------------------------------------------

def _estimate(mode: str, duration: int) -> int:
    if settings.GENERATION_PROVIDER == "offline":
        return 5
    ahead = GenerationJob.objects.filter(status__in=ACTIVE_STATUSES).count()
    return BASE_ESTIMATE_SECONDS[mode] * duration // 5 + 20 * ahead


def generation_create(
    *, requester, story: Story, prompt: str, duration: int = 5, aspect_ratio: str = "16:9", use_pins: bool = True,
    character_id: str | None = None, idempotency_key: str = "",
) -> GenerationJob:
    """Plan the job, check and spend the license use, and queue it. A repeated idempotency key returns the same job."""
    if requester is None or not requester.is_authenticated:
        raise GenerationError("Sign in to generate clips.", code="not_authenticated", status_code=401)
    idempotency_key = (idempotency_key or "").strip()[:100]
    if idempotency_key:
        existing = GenerationJob.objects.filter(requester=requester, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    quote = generation_quote(
        story=story, prompt=prompt, duration=duration, aspect_ratio=aspect_ratio, use_pins=use_pins,
        character_id=character_id,
    )
    plan, character = quote.plan, quote.character
    if character is not None:
        access = marketplace.license_check_access(requester, character, story)
        if not access.allowed:
            raise GenerationError(access.message, code="license_required", status_code=403)
    try:
        with transaction.atomic():
            job = GenerationJob.objects.create(
                story=story, character=character, requester=requester, idempotency_key=idempotency_key,
                mode=plan.mode, model_id=plan.model_id, user_prompt=" ".join(prompt.split()),
                prompt_used=plan.prompt_used, negative_prompt=plan.negative_prompt, arguments=plan.arguments,
                elements=plan.elements, pinned_character_ids=plan.pin_ids, reference_image_used=plan.reference_kind,
                duration=plan.duration, aspect_ratio=plan.aspect_ratio, cost_usd=plan.cost_usd,
                provider=settings.GENERATION_PROVIDER, estimated_seconds=_estimate(plan.mode, plan.duration),
                error="\n".join(plan.notes),
            )
            if character is not None:
                use = marketplace.license_consume_use(requester, character, story, job.job_id)
                if use is not None:
                    job.license_use_ref = job.job_id
                    job.save(update_fields=["license_use_ref"])
            transaction.on_commit(lambda: _enqueue_submit(job.pk), robust=True)
    except IntegrityError:
        # The same idempotency key raced in: the other request's job is the answer.
        existing = GenerationJob.objects.filter(requester=requester, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing
    return job


def _enqueue_submit(job_pk: int) -> None:
    from .tasks import submit_generation_job

    submit_generation_job.delay(job_pk)


def _enqueue_poll(job_pk: int, countdown: float) -> None:
    from .tasks import poll_generation_job

    poll_generation_job.apply_async((job_pk,), countdown=countdown)


# --- Submit and follow -------------------------------------------------------------------------

def _webhook_url() -> str | None:
    if not settings.GENERATION_USE_WEBHOOKS or settings.GENERATION_PROVIDER != "fal":
        return None
    return settings.SITE_URL.rstrip("/") + reverse("api-generation-webhook-fal")


def _image_names(job: GenerationJob) -> tuple[str, ...]:
    """Storage names of the images the job's arguments point at (the offline provider renders them)."""
    if job.mode == GenerationJob.Mode.REFERENCE_TO_VIDEO:
        pins = PinnedCharacter.objects.filter(pk__in=job.pinned_character_ids).prefetch_related("angles")
        return tuple(n for pin in pins for n in [pin.frontal_image.name, *(a.image.name for a in pin.angles.all())])
    if job.mode == GenerationJob.Mode.IMAGE_TO_VIDEO and job.character_id:
        refs = ReferenceImage.objects.filter(character_id=job.character_id)
        chosen = refs.filter(kind=job.reference_image_used).first()
        return (chosen.image.name,) if chosen else tuple(r.image.name for r in refs[:1])
    return ()


def generation_submit(*, job_pk: int) -> GenerationJob:
    """Send a queued job to the provider, once: a retried or duplicated task finds it already sent."""
    job = GenerationJob.objects.get(pk=job_pk)
    if job.status != Status.QUEUED or job.provider_request_id:
        return job
    GenerationJob.objects.filter(pk=job.pk).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    provider = get_provider(job.provider)
    request = ProviderRequest(
        model_id=job.model_id, arguments=job.arguments, webhook_url=_webhook_url(),
        # Only the offline provider renders from our stored images; a remote one fetches the URLs.
        image_names=_image_names(job) if job.provider == "offline" else (),
        duration=job.duration, aspect_ratio=job.aspect_ratio,
    )
    try:
        request_id = provider.submit(request)
    except ProviderFailed as exc:
        return generation_fail(job_pk=job.pk, message=f"The provider refused the request: {exc}")
    now = timezone.now()
    updated = GenerationJob.objects.filter(pk=job.pk, status=Status.QUEUED).update(
        provider_request_id=request_id, status=Status.SUBMITTED, submitted_at=now, updated_at=now, progress=5,
    )
    if updated:
        transaction.on_commit(lambda: _enqueue_poll(job.pk, settings.GENERATION_POLL_SECONDS), robust=True)
    return GenerationJob.objects.get(pk=job.pk)


def generation_poll(*, job_pk: int) -> tuple[GenerationJob, bool]:
    """Ask the provider how a job is doing; complete it when done. Returns (job, poll again?)."""
    job = GenerationJob.objects.get(pk=job_pk)
    if job.is_finished or not job.provider_request_id:
        return job, False
    if timezone.now() - (job.submitted_at or job.created_at) > timedelta(minutes=settings.GENERATION_TIMEOUT_MINUTES):
        return generation_fail(
            job_pk=job.pk, message=f"The provider did not finish within {settings.GENERATION_TIMEOUT_MINUTES} minutes."
        ), False
    provider = get_provider(job.provider)
    status = provider.status(job.model_id, job.provider_request_id)
    if status.state == "completed":
        return generation_complete(job_pk=job.pk), False
    progress = 10 if status.state == "queued" else 50
    GenerationJob.objects.filter(pk=job.pk, status__in=(Status.SUBMITTED, Status.PROCESSING)).update(
        status=Status.PROCESSING if status.state == "processing" else Status.SUBMITTED,
        queue_position=status.queue_position, progress=progress, updated_at=timezone.now(),
    )
    return GenerationJob.objects.get(pk=job.pk), True


# --- Finish ------------------------------------------------------------------------------------

def _scoring_inputs(job: GenerationJob) -> tuple[list[np.ndarray], dict | None]:
    """Reference images and palette to score against: the pins used, else the character's DNA."""
    names: list[str] = []
    if job.pinned_character_ids:
        for pin in PinnedCharacter.objects.filter(pk__in=job.pinned_character_ids).prefetch_related("angles"):
            names += [pin.frontal_image.name, *(a.image.name for a in pin.angles.all())]
    elif job.character_id:
        names = [r.image.name for r in ReferenceImage.objects.filter(character_id=job.character_id)]
    storage = ReferenceImage._meta.get_field("image").storage
    images = []
    for name in names:
        with storage.open(name, "rb") as fh:
            image = cv2.imdecode(np.frombuffer(fh.read(), dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is not None:
            images.append(image)
    if job.pinned_character_ids:
        # Pins carry no DNA palette: measure one on the pinned images themselves.
        from .consistency import palette_from_references

        return images, (palette_from_references(images) or None) if images else None
    return images, dict(job.character.color_palette) if job.character_id else None


def _score(job: GenerationJob, video_path: Path) -> tuple[int | None, list[dict], str]:
    from .consistency import NoReferenceFace, score_video

    references, palette = _scoring_inputs(job)
    if not references:
        return None, [], "No reference images: this clip has no consistency score."
    try:
        result = score_video(video_path, references, palette=palette)
    except NoReferenceFace as exc:
        return None, [], str(exc)
    frames = [
        {"seconds": round(f.seconds, 2), "score": f.score, "identity": round(f.identity, 3),
         "appearance": None if f.appearance is None else round(f.appearance, 3), "face_found": f.face_found}
        for f in result.frames
    ]
    return result.score, frames, ""


def _check_video(path: Path) -> None:
    """The provider's file must be a video we can play and score, as an upload must; else the job fails."""
    try:
        probe_video(path)
    except InvalidVideo as exc:
        raise ProviderFailed(f"The provider's video is not usable: {exc}") from exc


def generation_complete(*, job_pk: int) -> GenerationJob:
    """Fetch the result, store the video, score it, and count the use of the pins and character. Once."""
    with transaction.atomic():
        # Lock the job row only: PostgreSQL cannot lock the nullable side of the outer join to the character.
        job = GenerationJob.objects.select_for_update(of=("self",)).select_related("character").get(pk=job_pk)
        if job.is_finished:
            return job
        provider = get_provider(job.provider)
        try:
            result = provider.result(job.model_id, job.provider_request_id)
            with tempfile.TemporaryDirectory(prefix="generated-") as tmp:
                video_path = provider.download(result, Path(tmp))
                _check_video(video_path)
                score, frames, note = _score(job, video_path)
                with open(video_path, "rb") as fh:
                    job.video.save(f"{job.job_id}.mp4", File(fh), save=False)
        except ProviderFailed as exc:
            transaction.set_rollback(True)
            failure = str(exc)
        else:
            failure = None
            job.status = Status.COMPLETE
            job.progress = 100
            job.queue_position = None
            job.consistency_score = score
            job.frame_scores = frames
            job.completed_at = timezone.now()
            if note:
                job.error = "\n".join(filter(None, [job.error, note]))
            try:
                job.save()
            except BaseException:
                job.video.delete(save=False)
                raise
            if job.pinned_character_ids:
                pinning.pin_record_usage(PinnedCharacter.objects.filter(pk__in=job.pinned_character_ids))
            if job.character_id:
                character_record_use(character_id=job.character_id)
    if failure is not None:
        return generation_fail(job_pk=job_pk, message=failure)
    logger.info("Generation %s complete (score %s)", job.job_id, job.consistency_score)
    return job


def generation_fail(*, job_pk: int, message: str, status: str = Status.FAILED) -> GenerationJob:
    """End a job without a video and give back the license use it spent. Once."""
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job_pk)
        if job.is_finished:
            return job
        job.status = status
        job.error = "\n".join(filter(None, [job.error, message]))
        job.completed_at = timezone.now()
        job.queue_position = None
        job.save(update_fields=["status", "error", "completed_at", "queue_position", "updated_at"])
        if job.license_use_ref:
            marketplace.license_refund_use(job.license_use_ref)
    logger.info("Generation %s %s: %s", job.job_id, status, message)
    return job


def generation_cancel(*, job: GenerationJob, user) -> GenerationJob:
    if user is None or not (user.is_staff or user.pk == job.requester_id):
        raise GenerationError("Only the person who asked for this clip can cancel it.", code="forbidden",
                              status_code=403)
    if job.is_finished:
        raise GenerationError(f"This job is already {job.get_status_display().lower()}.", code="finished",
                              status_code=409)
    if job.provider_request_id:
        try:
            get_provider(job.provider).cancel(job.model_id, job.provider_request_id)
        except (ProviderFailed, TransientProviderError) as exc:
            logger.warning("Cancelling %s at the provider failed: %s", job.job_id, exc)
    return generation_fail(job_pk=job.pk, message="Cancelled by the requester.", status=Status.CANCELLED)


# --- Webhooks ----------------------------------------------------------------------------------

def webhook_received(*, provider: str, request_id: str, signature: str, payload: dict) -> str:
    """Act on a verified provider webhook once; replays and unknown requests change nothing."""
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(provider=provider, request_id=request_id, signature=signature)
    except IntegrityError:
        return "duplicate"
    job = GenerationJob.objects.filter(provider=provider, provider_request_id=request_id).first()
    if job is None:
        outcome = "unknown_request"
    elif job.is_finished:
        outcome = "already_finished"
    elif payload.get("status") == "OK":
        # The payload's own URL is not trusted: the result is fetched from the provider's queue.
        from .tasks import complete_generation_job

        complete_generation_job.delay(job.pk)
        outcome = "completing"
    else:
        message = payload.get("error") or "The provider reported an error."
        generation_fail(job_pk=job.pk, message=f"The provider failed the request: {message}")
        outcome = "failed"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(outcome=outcome)
    return outcome


def stale_jobs(older_than_seconds: int = 120) -> tuple[list[int], list[int]]:
    """Jobs nobody has moved for a while (a lost task, a missed webhook): (to submit, to poll)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = GenerationJob.objects.filter(updated_at__lt=cutoff)
    to_submit = stale.filter(status=Status.QUEUED, provider_request_id="").values_list("pk", flat=True)
    to_poll = stale.filter(status__in=(Status.SUBMITTED, Status.PROCESSING)).values_list("pk", flat=True)
    return list(to_submit), list(to_poll)
