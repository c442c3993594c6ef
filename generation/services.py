"""Generation jobs: create (with the license use), submit, follow, complete, fail, cancel, resume.

What a request sends and costs is `quotes.generation_quote`; scoring the finished video is `scoring`; acting on
the providers' webhooks is `webhooks` (next to their verifiers).

Every entry point (page, API, tasks, webhook) goes through these. A job moves
queued -> submitted -> processing -> complete | failed | cancelled, and each move is a conditional
update or happens under the job's row lock, so a webhook and a poll finishing the same job at
once, or a retried task, complete it exactly once.

Submitting at most once. fal takes no idempotency key, so a request sent twice is made (and billed)
twice. Before calling the provider, `generation_submit` claims the job by recording the attempt
(`submit_started_at`, a conditional update: of two deliveries of the task, one sends). When the call
ends, the outcome is recorded: the request id, or, when the provider surely did not take it (it
answered 5xx/429, or could not be reached), the claim is released for a retry. If the worker dies
in between, or the answer is lost on the way back, the outcome is unknown
(`GenerationJob.submission_unconfirmed`) and the job is never resent blindly. Another delivery of the
task leaves a claim alone while its call may still be running (`SUBMIT_CALL_LIMIT_SECONDS`, the
submit task's time limit); after that:
  - with webhooks, the webhook URL carries our job id, so fal's completion webhook for that request
    (signed, so it is fal's) tells us its request id; the job takes it and completes as usual. If no
    webhook comes within the generation timeout, fal never had it, or lost it: the job fails and
    its license use is given back;
  - without webhooks nothing can tell us the request id: the job fails at once, use given back, and
    the contributor can ask again.
What is left (the window is narrowed, not closed): a job whose request fal did receive but whose
webhook never arrives (or with webhooks off) is failed while fal may still make, and bill, the clip;
a worker killed before its request left fails a job that could safely have been sent (we cannot
tell the two apart); and `fal_client` itself resends a submission whose connection broke (its own
retries on transport errors), which no caller can prevent.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from characters.dna.services import character_record_use
from characters.models import PinnedCharacter, ReferenceImage, Story
from characters.pins import services as pin_services
from common.stale_work import StaleCutoffs, stale_cutoffs
from common.typing import AnyUser
from marketplace import services as marketplace

from . import scoring, selectors
from .models import GenerationJob, new_job_id
from .providers import (
    ProviderFailed,
    ProviderRequest,
    SubmissionOutcomeUnknown,
    TransientProviderError,
    get_provider,
)
from .quotes import GenerationError, generation_quote

logger = logging.getLogger(__name__)

Status = GenerationJob.Status
ACTIVE_STATUSES = (Status.QUEUED, Status.SUBMITTED, Status.PROCESSING)
# Typical provider time for a 5 s clip, per mode; 10 s clips take about twice as long.
BASE_ESTIMATE_SECONDS = {"reference-to-video": 150, "image-to-video": 110, "text-to-video": 90}


# --- Create ------------------------------------------------------------------------------------


def _estimate(mode: str, duration: int, provider: str) -> int:
    if provider == "offline":
        return 5
    ahead = GenerationJob.objects.filter(status__in=ACTIVE_STATUSES).count()
    return BASE_ESTIMATE_SECONDS[mode] * duration // 5 + 20 * ahead


def generation_create(
    *,
    requester: AnyUser | None,
    story: Story,
    prompt: str,
    duration: int = 5,
    aspect_ratio: str = "16:9",
    use_pins: bool | None = None,
    character_id: str | None = None,
    group_id: int | None = None,
    idempotency_key: str = "",
    with_audio: bool = False,
    model_id: str | None = None,
    video_element_pin: int | None = None,
    style_reference_kinds: list[str] | None = None,
    style_images: list | None = None,
) -> GenerationJob:
    """Plan the job, check and spend the license use, and queue it. A repeated idempotency key returns the same job.

    `use_pins`, `with_audio`, `model_id`, `video_element_pin` and the style references as in `generation_quote`;
    the uploaded style images it sends are stored beside the job's video, and removed again if the job is not
    created. The job records what it costs (`cost_usd`: nothing for an offline preview) and what the model's
    provider bills for it (`would_cost_usd`)."""
    if requester is None or not requester.is_authenticated:
        raise GenerationError("Sign in to generate clips.", code="not_authenticated", status_code=401)
    idempotency_key = (idempotency_key or "").strip()[:100]
    if idempotency_key:
        existing = GenerationJob.objects.filter(requester=requester, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    job_id = new_job_id()  # before the quote: uploaded style images are named under it
    quote = generation_quote(
        story=story,
        prompt=prompt,
        duration=duration,
        aspect_ratio=aspect_ratio,
        use_pins=use_pins,
        character_id=character_id,
        group_id=group_id,
        with_audio=with_audio,
        model_id=model_id,
        video_element_pin=video_element_pin,
        style_reference_kinds=style_reference_kinds,
        style_images=style_images,
        job_id=job_id,
    )
    plan, character = quote.plan, quote.character
    estimate = _estimate(plan.mode, plan.duration, quote.provider)
    written: list[str] = []
    try:
        for style in quote.style_references:
            if style.jpeg:
                written.append(style.name)
                _write_style_image(style.name, style.jpeg)
        with transaction.atomic():
            # One pass per character the clip shows: may the requester use it, and if that takes a license, spend
            # one use (under the license's row lock). A refusal raises LicenseRequired (403, with the reason and
            # what to do) and rolls back every use spent before it: nothing is written.
            use_refs = []
            for ref, shown in zip(_license_use_refs(job_id, len(quote.characters)), quote.characters, strict=True):
                if marketplace.license_consume_use(requester, shown, story, ref) is not None:
                    use_refs.append(ref)
            job = GenerationJob.objects.create(
                job_id=job_id,
                license_use_refs=use_refs,
                story=story,
                character=character,
                requester=requester,
                idempotency_key=idempotency_key,
                mode=plan.mode,
                model_id=plan.model_id,
                user_prompt=" ".join(prompt.split()),
                prompt_used=plan.prompt_used,
                negative_prompt=plan.negative_prompt,
                arguments=plan.arguments,
                elements=plan.elements,
                pinned_character_ids=plan.pin_ids,
                style_references=[
                    {"position": n, "source": r.source, "kind": r.kind, "label": r.label, "url": r.url, "name": r.name}
                    for n, r in enumerate(quote.style_references, start=1)
                ],
                reference_image_used=plan.reference_kind,
                duration=plan.duration,
                aspect_ratio=plan.aspect_ratio,
                with_audio=plan.with_audio,
                cost_usd=quote.cost_usd,
                would_cost_usd=quote.would_cost_usd,
                provider=quote.provider,
                estimated_seconds=estimate,
                error="\n".join(plan.notes),
            )
            job.characters.set(quote.characters)
            transaction.on_commit(lambda: _enqueue_submit(job.pk), robust=True)
    except IntegrityError:
        _delete_files(written)
        # The same idempotency key raced in: the other request's job is the answer.
        existing = GenerationJob.objects.filter(requester=requester, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing
    except BaseException:
        _delete_files(written)  # a refused license use (or anything else) leaves no upload behind
        raise
    return job


def _write_style_image(name: str, jpeg: bytes) -> None:
    """Store an uploaded style image's JPEG under exactly `name` (its URL is already in the job's arguments)."""
    saved = default_storage.save(name, ContentFile(jpeg))
    if saved != name:
        default_storage.delete(saved)
        raise RuntimeError(f"The storage renamed {name} to {saved}.")


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _license_use_refs(job_id: str, count: int) -> list[str]:
    """The marketplace job refs of a job's license uses, one per character it shows: the job id for the first
    (as before several characters were attributed), `<job id>.<n>` for the others."""
    return [job_id if n == 0 else f"{job_id}.{n}" for n in range(count)]


def _enqueue_submit(job_pk: int) -> None:
    from .tasks import submit_generation_job

    submit_generation_job.delay(job_pk)


def _enqueue_poll(job_pk: int, countdown: float) -> None:
    from .tasks import poll_generation_job

    poll_generation_job.apply_async((job_pk,), countdown=countdown)


# --- Submit and follow -------------------------------------------------------------------------

# A submit task is stopped (its hard time limit kills the worker's child) after this long, which is
# longer than fal_client can spend on one submission (ten tries of at most 30 s, with backoff). So a
# submission that began longer ago than this is over: if it left no request id, its outcome is lost.
SUBMIT_CALL_LIMIT_SECONDS = 7 * 60

UNCONFIRMED_MESSAGE = (
    "The request went to the provider, but its answer never reached us (the connection or the worker was lost), "
    "so we cannot tell whether the provider has it. It is not sent again, which could make the clip twice. "
    "Any license use it took has been given back: please ask for the clip again."
)


SIGNED_WEBHOOKS = {"fal", "replicate"}
WEBHOOK_ROUTES = {
    "fal": "api-generation-webhook-fal",
    "replicate": "api-generation-webhook-replicate",
    "luma": "api-generation-callback-luma",
}


def _webhook_url(job: GenerationJob) -> str | None:
    """Where the provider posts the job's completion (fal, Replicate; Luma's unsigned callback), None for those that
    send none (Runway, offline). The job id rides along, so that a webhook for a request whose submission answer we
    lost still says which job it belongs to (see `webhooks.webhook_received`)."""
    if not settings.GENERATION_USE_WEBHOOKS or job.provider not in WEBHOOK_ROUTES:
        return None
    base = settings.SITE_URL.rstrip("/") + reverse(WEBHOOK_ROUTES[job.provider])
    return f"{base}?{urlencode({'job': job.job_id})}"


def _overdue(job: GenerationJob) -> bool:
    started = job.submitted_at or job.created_at
    return timezone.now() - started > timedelta(minutes=settings.GENERATION_TIMEOUT_MINUTES)


def _timeout_message() -> str:
    return f"The provider did not finish within {settings.GENERATION_TIMEOUT_MINUTES} minutes."


def _image_names(job: GenerationJob) -> tuple[str, ...]:
    """Storage names of the images the job's arguments point at (the offline provider renders them)."""
    if job.mode == GenerationJob.Mode.REFERENCE_TO_VIDEO:
        pins = PinnedCharacter.objects.filter(pk__in=job.pinned_character_ids).prefetch_related("angles")
        styles = [style["name"] for style in job.style_references or [] if style.get("name")]
        pin_images = [n for pin in pins for n in [pin.frontal_image.name, *(a.image.name for a in pin.angles.all())]]
        return (*pin_images, *styles)
    if job.mode == GenerationJob.Mode.IMAGE_TO_VIDEO and job.character_id:
        refs = ReferenceImage.objects.filter(character_id=job.character_id)
        chosen = refs.filter(kind=job.reference_image_used).first()
        return (chosen.image.name,) if chosen else tuple(r.image.name for r in refs[:1])
    return ()


def _submission_unconfirmed(job: GenerationJob) -> GenerationJob:
    """A submission is over and its outcome is unknown: wait for fal's webhook to name it, or give up now.

    Not resent (see the module docstring). With webhooks the job waits, queued, for the webhook that
    carries its id, until the generation timeout (the stale-job sweep, or reading the job, then fails
    it). Without webhooks nothing can ever tell us the request id, so the job fails now.
    """
    # Only a signed webhook may name the request (Luma's callbacks are unsigned; Runway sends none).
    if job.provider not in SIGNED_WEBHOOKS or _webhook_url(job) is None:
        return generation_fail(job_pk=job.pk, message=UNCONFIRMED_MESSAGE)
    return job


def generation_submit(*, job_pk: int, retried_later: bool = True) -> GenerationJob:
    """Send a queued job to the provider, at most once (see the module docstring).

    A retried or duplicated task finds it already sent, or being sent. `retried_later` says whether
    anything will try again after a transient error (the task's retries, then the stale-job sweep):
    with eager tasks and nothing left to retry it, the job fails with the provider's message and its
    license use is given back, instead of waiting for a retry that never comes.
    """
    job = GenerationJob.objects.get(pk=job_pk)
    if job.status != Status.QUEUED or job.provider_request_id:
        return job
    if _overdue(job):
        return generation_fail(job_pk=job.pk, message=_timeout_message())
    now = timezone.now()
    if job.submit_started_at is not None:
        if now - job.submit_started_at < timedelta(seconds=SUBMIT_CALL_LIMIT_SECONDS):
            return job  # another delivery of the task is sending it, or may still be
        return _submission_unconfirmed(job)
    claimed = GenerationJob.objects.filter(
        pk=job.pk, status=Status.QUEUED, provider_request_id="", submit_started_at__isnull=True
    ).update(attempts=F("attempts") + 1, submit_started_at=now, updated_at=now)
    if not claimed:  # another delivery of the task claimed it first
        return GenerationJob.objects.get(pk=job.pk)
    job.attempts, job.submit_started_at = job.attempts + 1, now
    provider = get_provider(job.provider)
    request = ProviderRequest(
        model_id=job.model_id,
        arguments=job.arguments,
        webhook_url=_webhook_url(job),
        # Only the offline provider renders from our stored images; a remote one fetches the URLs.
        image_names=_image_names(job) if job.provider == "offline" else (),
        duration=job.duration,
        aspect_ratio=job.aspect_ratio,
    )
    try:
        request_id = provider.submit(request)
    except ProviderFailed as exc:
        return generation_fail(job_pk=job.pk, message=f"The provider refused the request: {exc}")
    except SubmissionOutcomeUnknown as exc:
        logger.warning("Generation %s: the submission's outcome is unknown: %s", job.job_id, exc)
        return _submission_unconfirmed(job)
    except TransientProviderError as exc:
        # The provider surely did not take it: release the claim, so that a retry may send it.
        GenerationJob.objects.filter(pk=job.pk, provider_request_id="").update(
            submit_started_at=None, updated_at=timezone.now()
        )
        if not retried_later:
            return generation_fail(
                job_pk=job.pk,
                message=f"The provider could not take the request ({exc}). Nothing retries it, so the clip "
                "was not made; any license use it took has been given back. Please try again in a few minutes.",
            )
        raise
    now = timezone.now()
    updated = GenerationJob.objects.filter(pk=job.pk, status=Status.QUEUED, provider_request_id="").update(
        provider_request_id=request_id,
        status=Status.SUBMITTED,
        submitted_at=now,
        updated_at=now,
        progress=5,
    )
    if not updated:  # cancelled meanwhile, or a webhook already named the request
        return GenerationJob.objects.get(pk=job.pk)
    job.provider_request_id, job.status, job.submitted_at, job.updated_at, job.progress = (
        request_id,
        Status.SUBMITTED,
        now,
        now,
        5,
    )
    transaction.on_commit(lambda: _enqueue_poll(job.pk, settings.GENERATION_POLL_SECONDS), robust=True)
    return job


def generation_poll(*, job_pk: int) -> tuple[GenerationJob, bool]:
    """Ask the provider how a job is doing; complete it when done. Returns (job, poll again?)."""
    job = GenerationJob.objects.get(pk=job_pk)
    if job.is_finished or not job.provider_request_id:
        return job, False
    if _overdue(job):
        return generation_fail(job_pk=job.pk, message=_timeout_message()), False
    provider = get_provider(job.provider)
    status = provider.status(job.model_id, job.provider_request_id)
    if status.state == "completed":
        # Just seen COMPLETED: the result is fetched without asking for the status again.
        return generation_complete(job_pk=job.pk, completed=True), False
    if status.state == "failed":
        return generation_fail(job_pk=job.pk, message=f"The provider failed the request: {status.error}"), False
    if status.state == "cancelled":  # at the provider (Runway's CANCELLED): nothing more will come
        return generation_fail(
            job_pk=job.pk, message=status.error or "The provider cancelled the request.", status=Status.CANCELLED
        ), False
    now = timezone.now()
    fields = {
        "status": Status.PROCESSING if status.state == "processing" else Status.SUBMITTED,
        "queue_position": status.queue_position,
        "progress": 10 if status.state == "queued" else 50,
        "updated_at": now,
    }
    updated = GenerationJob.objects.filter(pk=job.pk, status__in=(Status.SUBMITTED, Status.PROCESSING)).update(**fields)
    if not updated:  # finished meanwhile (a webhook, a cancel)
        job = GenerationJob.objects.get(pk=job.pk)
        return job, not job.is_finished
    for name, value in fields.items():
        setattr(job, name, value)
    return job, True


def generation_refresh(*, job: GenerationJob) -> GenerationJob:
    """Bring a job up to date as someone reads it (its page, its status endpoint). Returns the job as it is now.

    With a worker or background threads, tasks and the sweep move jobs on and this only fails a job past
    the generation timeout. With eager tasks (no broker, TASKS_IN_BACKGROUND_THREADS off) nothing follows a
    job after its first poll, so reading it also asks the provider again, at most every
    GENERATION_POLL_SECONDS: the page's live status moves the job on, and a transient provider error
    (a 5xx, fal unreachable) only means that the next read tries again.
    """
    if job.is_finished:
        return job
    if _overdue(job):
        return generation_fail(job_pk=job.pk, message=_timeout_message())
    if not (settings.CELERY_TASK_ALWAYS_EAGER and job.provider_request_id):
        return job
    if timezone.now() - job.updated_at < timedelta(seconds=settings.GENERATION_POLL_SECONDS):
        return job
    try:
        return generation_poll(job_pk=job.pk)[0]
    except TransientProviderError as exc:
        logger.info("Generation %s: the provider could not be asked now, the next read retries: %s", job.job_id, exc)
        GenerationJob.objects.filter(pk=job.pk).update(updated_at=timezone.now())  # readers wait a poll interval
        return GenerationJob.objects.get(pk=job.pk)


# --- Finish ------------------------------------------------------------------------------------


def generation_complete(*, job_pk: int, completed: bool = False) -> GenerationJob:
    """Fetch the result, store the video, score it, and count the use of the pins and character. Once.

    `completed`: the provider has just reported the request finished (a poll, a webhook)."""
    with transaction.atomic():
        # Lock the job row only: PostgreSQL cannot lock the nullable side of the outer join to the character.
        job = GenerationJob.objects.select_for_update(of=("self",)).select_related("character").get(pk=job_pk)
        if job.is_finished:
            return job
        provider = get_provider(job.provider)
        try:
            result = provider.result(job.model_id, job.provider_request_id, completed=completed)
            with tempfile.TemporaryDirectory(prefix="generated-") as tmp:
                video_path = provider.download(result, Path(tmp))
                scoring.check_video(video_path)
                score, frames, note = scoring.score_clip(job, video_path)
                with open(video_path, "rb") as fh:
                    job.video.save(f"{job.job_id}.mp4", File(fh), save=False)
        except ProviderFailed as exc:
            transaction.set_rollback(True)
            failure: str | None = str(exc)
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
                job.save(
                    update_fields=[
                        "status",
                        "progress",
                        "queue_position",
                        "consistency_score",
                        "frame_scores",
                        "completed_at",
                        "error",
                        "video",
                        "updated_at",
                    ]
                )
            except BaseException:
                job.video.delete(save=False)
                raise
            if job.pinned_character_ids:
                pin_services.pin_record_usage(PinnedCharacter.objects.filter(pk__in=job.pinned_character_ids))
            for character_pk in job.attributed_character_pks():
                character_record_use(character_id=character_pk)
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
        for ref in job.license_use_refs:
            marketplace.license_refund_use(ref)
    logger.info("Generation %s %s: %s", job.job_id, status, message)
    return job


def generation_cancel(*, job: GenerationJob, user: AnyUser | None) -> GenerationJob:
    if not selectors.can_see_job(user, job):
        raise GenerationError(
            "Only the person who asked for this clip can cancel it.", code="forbidden", status_code=403
        )
    if job.is_finished:
        raise GenerationError(
            f"This job is already {job.get_status_display().lower()}.", code="finished", status_code=409
        )
    if job.provider_request_id:
        try:
            get_provider(job.provider).cancel(job.model_id, job.provider_request_id)
        except (ProviderFailed, TransientProviderError) as exc:
            logger.warning("Cancelling %s at the provider failed: %s", job.job_id, exc)
    return generation_fail(job_pk=job.pk, message="Cancelled by the requester.", status=Status.CANCELLED)


def generation_resume_stale(*, cutoffs: StaleCutoffs | None = None) -> dict:
    """Move on every job nobody is moving (selectors.stale_jobs): queue its submission or its poll again.

    The beat's sweep and the embedded mode's start-up call this. The tasks fail a job past the generation
    timeout with that reason (the bound on how long a lost job is tried), and never submit one twice.
    """
    to_submit, to_poll = selectors.stale_jobs(cutoffs or stale_cutoffs())
    for pk in to_submit:
        _enqueue_submit(pk)
    for pk in to_poll:
        _enqueue_poll(pk, 0)
    return {"submitted": len(to_submit), "polled": len(to_poll)}
