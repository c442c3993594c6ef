"""Writes for stories, clips and candidate frames. Views, API views, admin actions, tasks and
commands all call these; the rules live here once."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeGuard

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.db.models import F, QuerySet
from django.db.models.expressions import Combinable
from django.utils import timezone

from characters.clips import selectors
from characters.clips.extraction import ExtractionResult, extract_candidates
from characters.groups.services import clip_record_tracks
from characters.models import CandidateFrame, Clip, Story, StoryContributor, format_timestamp
from characters.vision.jpeg import encode_jpeg
from characters.vision.video import InvalidVideo, local_video_copy, probe_video, transcode_to_playable
from common.exceptions import ServiceError
from common.safe_fetch import fetch_to_temp_file
from common.stale_work import StaleCutoffs, keep_alive, stale_cutoffs
from common.throttling import parse_rate, rate_limit_wait
from common.typing import AnyUser, UserType
from common.upload_size import clip_max_bytes, exceeds_clip_size, too_large_message

logger = logging.getLogger(__name__)

THUMBNAIL_MAX_SIDE = 320
# The share of an extraction run's progress bar that making the playable copy takes, when it has to.
TRANSCODE_PROGRESS_SHARE = 30


class InvalidClip(ServiceError):
    code = "invalid_clip"


def story_create(*, title: str, description: str = "", created_by: UserType) -> Story:
    title = title.strip()
    if not title:
        raise ServiceError("A story needs a title.", code="invalid_title")
    return Story.objects.create(
        title=title, slug=Story.unique_slug_for(title), description=description.strip(), created_by=created_by
    )


def story_add_contributor(*, story: Story, user: UserType, contribution: str) -> None:
    """Record that `user` contributed to `story` (idempotent); other apps call this for their contributions."""
    StoryContributor.objects.get_or_create(story=story, user=user, defaults={"first_contribution": contribution})


def _spool_to_temp(upload: File) -> Path:
    """Copy an upload (memory or temp file) to a named temp file the decoder can open, within the size limit."""
    suffix = Path(getattr(upload, "name", "") or "clip").suffix.lower()[:8] or ".bin"
    tmp = tempfile.NamedTemporaryFile(prefix="clip-upload-", suffix=suffix, delete=False)
    written = 0
    try:
        upload.seek(0)
        for chunk in upload.chunks() if hasattr(upload, "chunks") else iter(lambda: upload.read(1 << 20), b""):
            written += len(chunk)
            if exceeds_clip_size(written):
                raise InvalidClip(too_large_message("The file"), status_code=413)
            tmp.write(chunk)
    except BaseException:
        tmp.close()
        Path(tmp.name).unlink(missing_ok=True)
        raise
    tmp.close()
    return Path(tmp.name)


_PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


def _refuse_upload_over_rate(uploader: UserType, *, count: bool) -> None:
    """The one upload limit (CLIP_UPLOAD_RATE per user), for every way a clip comes in."""
    rate = settings.CLIP_UPLOAD_RATE
    if not rate:
        return
    wait = rate_limit_wait(f"clip-uploads:{uploader.pk}", rate, count=count)
    if wait is None:
        return
    limit, period = parse_rate(rate)
    when = f"{wait} seconds" if wait < 120 else f"{round(wait / 60)} minutes"
    raise ServiceError(
        f"You have reached the upload limit of {limit} clips per {_PERIOD_NAMES.get(period, f'{period} s')}. "
        f"Try again in {when}.",
        code="upload_rate_limited",
        status_code=429,
        retry_after=wait,
    )


def clip_create(*, story: Story, uploader: UserType, upload: File, source_url: str = "") -> Clip:
    """Validate an uploaded video, store it and queue its extraction.

    Nothing is written (no row, no stored file) unless the video passes every check.
    """
    _refuse_upload_over_rate(uploader, count=True)  # counts attempts: a refused file cost its probing too
    local_path = _spool_to_temp(upload)
    try:
        try:
            info = probe_video(local_path)
        except InvalidVideo as exc:
            raise InvalidClip(str(exc)) from None
        original_name = Path(getattr(upload, "name", "") or "").name[:255]
        with transaction.atomic():
            position = (story.clips.order_by("-position").values_list("position", flat=True).first() or 0) + 1
            token = _new_task_id()
            clip = Clip(
                extraction_task_id=token,
                extraction_attempts=1,
                heartbeat_at=timezone.now(),
                story=story,
                uploader=uploader,
                original_filename=original_name,
                source_url=source_url,
                position=position,
                size_bytes=local_path.stat().st_size,
                duration_seconds=info.duration_seconds,
                fps=info.fps,
                frame_count=info.frame_count,
                width=info.width,
                height=info.height,
                codec=info.codec,
                container=info.container,
            )
            with open(local_path, "rb") as fh:
                clip.video.save(f"{original_name or 'clip'}.{info.container}", File(fh), save=False)
            if info.browser_playable:
                # Already H.264/yuv420p in MP4: the upload is its own playable copy, no re-encoding.
                clip.playable_video.name = clip.video.name
            try:
                clip.save()
            except BaseException:
                clip.video.delete(save=False)
                raise
            # robust: with in-process tasks a failed extraction is recorded on the clip, not raised at the uploader.
            story_add_contributor(story=story, user=uploader, contribution="clip")
            transaction.on_commit(lambda: _enqueue_extraction(clip.pk, token), robust=True)
        return clip
    finally:
        local_path.unlink(missing_ok=True)


def clip_create_from_url(*, story: Story, uploader: UserType, url: str) -> Clip:
    """Fetch a clip from a link the user gave, then validate and store it exactly like an upload.

    The fetch only reaches public http(s) hosts, within CLIP_MAX_BYTES and CLIP_FETCH_TIMEOUT_SECONDS
    (see common.safe_fetch); a refused link or file leaves nothing behind.
    """
    _refuse_upload_over_rate(uploader, count=False)  # before fetching; clip_create counts it
    fetched = fetch_to_temp_file(url, max_bytes=clip_max_bytes(), timeout=settings.CLIP_FETCH_TIMEOUT_SECONDS)
    try:
        with open(fetched.path, "rb") as fh:
            return clip_create(story=story, uploader=uploader, upload=File(fh, name=fetched.filename), source_url=url)
    finally:
        fetched.path.unlink(missing_ok=True)


def _new_task_id() -> str:
    return f"extract-{uuid.uuid4().hex}"


def _enqueue_extraction(clip_id: int, token: str) -> None:
    """Send the task; its id is the clip's token, so the broker can be asked whether the message is still there."""
    from characters.clips.tasks import extract_clip_frames

    extract_clip_frames.apply_async((clip_id, token), task_id=token)


def _queue_extraction(clip_id: int, rows: QuerySet[Clip], *, attempts: int | Combinable) -> int:
    """Queue the clip's extraction, if it is still in `rows` (a conditional update: 0 when not), with a new token.

    The new token supersedes any message still around for the clip: only the task carrying it runs."""
    token = _new_task_id()
    updated = rows.filter(pk=clip_id).update(
        status=Clip.Status.UPLOADED,
        progress=0,
        error_message="",
        extraction_task_id=token,
        extraction_attempts=attempts,
        heartbeat_at=timezone.now(),
        extraction_finished_at=None,
    )
    if updated:
        transaction.on_commit(lambda: _enqueue_extraction(clip_id, token), robust=True)
    return updated


def can_request_extraction(user: AnyUser | None, clip: Clip) -> TypeGuard[UserType]:
    """Who may re-run a clip's extraction: the story's creator, the clip's uploader, or staff."""
    return bool(
        user is not None
        and user.is_authenticated
        and (user.is_staff or user.pk in (clip.story.created_by_id, clip.uploader_id))
    )


def clip_request_extraction(*, clip: Clip, user: AnyUser | None) -> Clip:
    """Queue (again) the extraction of a clip; a re-run replaces its candidates.

    Refused while a run is queued or under way, so two runs never write the same clip at once; staff may
    re-run a clip whose run is stuck (selectors.stale_clips: its worker died, its message was lost).
    """
    if not can_request_extraction(user, clip):
        raise ServiceError(
            "Only the story's creator, the clip's uploader or staff can re-run its extraction.",
            code="forbidden",
            status_code=403,
        )
    with transaction.atomic():
        idle = Clip.objects.exclude(status__in=Clip.IN_PROGRESS_STATUSES)
        queued = _queue_extraction(clip.pk, idle, attempts=1)
        if not queued and user.is_staff:
            queued = _queue_extraction(clip.pk, selectors.stale_clips(stale_cutoffs()), attempts=1)
    if not queued:
        raise ServiceError(
            "This clip's frames are being extracted already; wait for the run to finish."
            + (" It is not stuck: it showed signs of life recently." if user.is_staff else ""),
            code="extraction_in_progress",
            status_code=409,
        )
    clip.refresh_from_db()
    return clip


def interrupted_message(attempts: int) -> str:
    return (
        f"The extraction was interrupted {attempts} time{'s' if attempts != 1 else ''} (its worker stopped, or its "
        "task was lost) and is not tried again automatically. Re-run it to try again."
    )


def clips_resume_stale(*, cutoffs: StaleCutoffs | None = None, clip_ids: Iterable[int] | None = None) -> dict:
    """Queue again each stuck clip (selectors.stale_clips), at most TASKS_MAX_ATTEMPTS times; then fail it, saying why.

    The beat's sweep, the embedded mode's start-up and the admin call this. Each clip is taken with a
    conditional update on what was seen, so two sweeps at once queue it once.
    """
    stale = selectors.stale_clips(cutoffs or stale_cutoffs())
    if clip_ids is not None:
        stale = stale.filter(pk__in=list(clip_ids))
    outcome: dict[str, list[int]] = {"requeued": [], "failed": []}
    for pk, status, token, attempts, heartbeat in stale.values_list(
        "pk", "status", "extraction_task_id", "extraction_attempts", "heartbeat_at"
    ):
        unchanged = Clip.objects.filter(pk=pk, status=status, extraction_task_id=token, heartbeat_at=heartbeat)
        if attempts >= settings.TASKS_MAX_ATTEMPTS:
            if unchanged.update(
                status=Clip.Status.FAILED,
                error_message=interrupted_message(attempts),
                extraction_finished_at=timezone.now(),
            ):
                logger.warning("Clip %s: extraction lost %s times, failed", pk, attempts)
                outcome["failed"].append(pk)
        elif _queue_extraction(pk, unchanged, attempts=F("extraction_attempts") + 1):
            logger.warning("Clip %s: extraction lost while %s, queued again (attempt %s)", pk, status, attempts + 1)
            outcome["requeued"].append(pk)
    return outcome


def clip_heartbeat(*, clip_id: int, token: str = "") -> None:
    """The running extraction is alive (only the run holding the clip's token counts)."""
    rows = Clip.objects.filter(pk=clip_id, status=Clip.Status.EXTRACTING)
    if token:
        rows = rows.filter(extraction_task_id=token)
    rows.update(heartbeat_at=timezone.now())


@contextlib.contextmanager
def clip_keep_alive(*, clip_id: int, token: str = "") -> Iterator[None]:
    """Beat for the clip while the block runs, also through steps that report no progress (storing, encoding)."""
    with keep_alive(lambda: clip_heartbeat(clip_id=clip_id, token=token)):
        yield


def _set_progress(clip_id: int, percent: int) -> None:
    Clip.objects.filter(pk=clip_id, status=Clip.Status.EXTRACTING).update(
        progress=max(0, min(99, percent)),
        heartbeat_at=timezone.now(),  # progress is a sign of life
    )


def _make_playable_copy(clip: Clip, progress: Callable[[float], None] | None) -> None:
    """Store an H.264/yuv420p MP4 of the clip's upload as `playable_video` (when it has none yet)."""
    if clip.playable_video and clip.playable_video.storage.exists(clip.playable_video.name):
        return
    source, source_is_temp = local_video_copy(clip.video)
    tmp = tempfile.NamedTemporaryFile(prefix="clip-playable-", suffix=".mp4", delete=False)
    tmp.close()
    try:
        transcode_to_playable(source, tmp.name, duration_seconds=clip.duration_seconds, progress=progress)
        with open(tmp.name, "rb") as fh:
            clip.playable_video.save("playable.mp4", File(fh), save=False)
        try:
            Clip.objects.filter(pk=clip.pk).update(playable_video=clip.playable_video.name)
        except BaseException:
            clip.playable_video.delete(save=False)
            raise
    finally:
        Path(tmp.name).unlink(missing_ok=True)
        if source_is_temp:
            source.unlink(missing_ok=True)


def clip_extract_frames(*, clip_id: int, token: str = "") -> Clip:
    """Run the extraction pipeline on a clip and replace its candidate frames with the result.

    Safe to re-run. On failure the clip ends `failed` with the reason and keeps no partial frames.
    With `token` (the task's), it runs only while the clip is queued or running under that token: a message
    that comes back after the clip was queued again, or finished, does nothing.
    """
    rows = Clip.objects.filter(pk=clip_id)
    if token:
        rows = rows.filter(extraction_task_id=token, status__in=Clip.IN_PROGRESS_STATUSES)
    now = timezone.now()
    updated = rows.update(
        status=Clip.Status.EXTRACTING,
        progress=0,
        error_message="",
        warning_message="",
        extraction_started_at=now,
        extraction_finished_at=None,
        heartbeat_at=now,
    )
    if not updated and token and Clip.objects.filter(pk=clip_id).exists():
        logger.info("Clip %s: task %s is superseded or done; nothing to do", clip_id, token)
        return Clip.objects.get(pk=clip_id)
    if not updated:
        raise ServiceError(f"Clip {clip_id} does not exist.", code="not_found", status_code=404)
    clip = Clip.objects.select_related("story").get(pk=clip_id)
    if not clip.video or not clip.video.storage.exists(clip.video.name):
        message = "The clip's video file is missing from storage. Upload the clip again."
        Clip.objects.filter(pk=clip_id).update(
            status=Clip.Status.FAILED, error_message=message, extraction_finished_at=timezone.now()
        )
        raise ServiceError(message, code="video_missing", status_code=409)
    local_path, is_temp = None, False
    try:
        # First the copy browsers play (0-30 % when it has to be encoded); the extraction then decodes that
        # copy, so candidate times match what the clip page and the pin panel's scrubber show.
        share = 0 if clip.playable_video else TRANSCODE_PROGRESS_SHARE
        _make_playable_copy(clip, lambda fraction: _set_progress(clip_id, round(fraction * share)))
        # The playable copy (playback_video) is what the clip page plays and what is decoded.
        local_path, is_temp = local_video_copy(clip.playback_video)
        result = extract_candidates(
            local_path,
            fps=settings.EXTRACTION_FPS,
            top_n=settings.EXTRACTION_TOP_N,
            min_quality=settings.MIN_QUALITY_SCORE,
            progress=lambda p: _set_progress(clip_id, share + round(p * (100 - share) / 100)),
        )
        _store_result(clip, result)
    except Exception as exc:
        logger.exception("Extraction of clip %s failed", clip_id)
        message = str(exc) if isinstance(exc, (InvalidVideo, ServiceError)) else f"Extraction failed: {exc}"
        Clip.objects.filter(pk=clip_id).update(
            status=Clip.Status.FAILED, error_message=message, extraction_finished_at=timezone.now()
        )
        raise
    finally:
        if is_temp and local_path is not None:
            local_path.unlink(missing_ok=True)
    clip.refresh_from_db()
    return clip


def _store_result(clip: Clip, result: ExtractionResult) -> None:
    """Write frames to storage first, then swap the rows in one transaction; clean files on failure."""
    new_frames: list[CandidateFrame] = []
    stored_names: list[str] = []
    old_frames = list(clip.candidates.all())
    old_last_frame = clip.last_frame.name if clip.last_frame else ""
    try:
        for rank, cand in enumerate(result.frames, start=1):
            h, w = cand.image.shape[:2]
            frame = CandidateFrame(
                clip=clip,
                seconds=round(cand.seconds, 3),
                timestamp=format_timestamp(cand.seconds),
                width=w,
                height=h,
                rank=rank,
                quality=cand.quality,
                sharpness_score=cand.sharpness_score,
                lighting_score=cand.lighting_score,
                face_score=cand.face_score,
                composition_score=cand.composition_score,
                dominant=cand.dominant,
                pose=cand.pose,
                full_body=cand.full_body,
                occluded=cand.occluded,
                low_quality=cand.low_quality,
                detections=cand.detections,
            )
            stem = f"{int(cand.seconds * 1000):07d}ms"
            frame.image.save(f"{stem}.jpg", ContentFile(encode_jpeg(cand.image)), save=False)
            stored_names.append(frame.image.name)
            thumb = ContentFile(encode_jpeg(cand.image, max_side=THUMBNAIL_MAX_SIDE))
            frame.thumbnail.save(f"{stem}_thumb.jpg", thumb, save=False)
            stored_names.append(frame.thumbnail.name)
            new_frames.append(frame)
        if result.last_frame is not None:
            clip.last_frame.save("last_frame.jpg", ContentFile(encode_jpeg(result.last_frame)), save=False)
            stored_names.append(clip.last_frame.name)
        with transaction.atomic():
            CandidateFrame.objects.filter(clip=clip).delete()
            CandidateFrame.objects.bulk_create(new_frames)
            # Who is who: the clip's tracks join the story's character groups (story lock; see groups.services).
            clip_record_tracks(clip=clip, tracks=result.tracks, frames=new_frames)
            Clip.objects.filter(pk=clip.pk).update(
                status=Clip.Status.READY,
                progress=100,
                frames_analysed=result.frames_analysed,
                people_found=bool(result.frames),
                warning_message=result.warning,
                last_frame=clip.last_frame.name if result.last_frame is not None else old_last_frame,
                last_frame_seconds=result.last_frame_seconds,
                extraction_finished_at=timezone.now(),
            )
    except BaseException:
        storage = CandidateFrame._meta.get_field("image").storage
        for name in stored_names:
            storage.delete(name)
        raise
    # The old frames' files go only once the new rows are committed.
    storage = CandidateFrame._meta.get_field("image").storage
    for frame in old_frames:
        for name in (frame.image.name, frame.thumbnail.name):
            if name and name not in stored_names:
                storage.delete(name)
    if old_last_frame and old_last_frame != clip.last_frame.name:
        storage.delete(old_last_frame)
