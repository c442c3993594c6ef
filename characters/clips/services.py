"""Writes for stories, clips and candidate frames. Views, API views, admin actions, tasks and
commands all call these; the rules live here once."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.utils import timezone

from characters.clips.extraction import ExtractionResult, extract_candidates
from characters.groups.services import clip_record_tracks
from characters.models import CandidateFrame, Clip, Story, StoryContributor, format_timestamp
from characters.vision.jpeg import encode_jpeg
from characters.vision.video import InvalidVideo, local_video_copy, probe_video
from common.exceptions import ServiceError
from common.safe_fetch import fetch_to_temp_file

logger = logging.getLogger(__name__)

THUMBNAIL_MAX_SIDE = 320


class InvalidClip(ServiceError):
    code = "invalid_clip"


def story_create(*, title: str, description: str = "", created_by) -> Story:
    title = title.strip()
    if not title:
        raise ServiceError("A story needs a title.", code="invalid_title")
    return Story.objects.create(
        title=title, slug=Story.unique_slug_for(title), description=description.strip(), created_by=created_by
    )


def story_add_contributor(*, story: Story, user, contribution: str) -> None:
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
            if written > settings.CLIP_MAX_BYTES:
                raise InvalidClip(
                    f"The file is larger than {settings.CLIP_MAX_BYTES / 1_048_576:.0f} MB, the limit for a clip. "
                    "Trim or compress it and try again.",
                    status_code=413,
                )
            tmp.write(chunk)
    except BaseException:
        tmp.close()
        Path(tmp.name).unlink(missing_ok=True)
        raise
    tmp.close()
    return Path(tmp.name)


def clip_create(*, story: Story, uploader, upload: File, source_url: str = "") -> Clip:
    """Validate an uploaded video, store it and queue its extraction.

    Nothing is written (no row, no stored file) unless the video passes every check.
    """
    local_path = _spool_to_temp(upload)
    try:
        try:
            info = probe_video(local_path)
        except InvalidVideo as exc:
            raise InvalidClip(str(exc)) from None
        original_name = Path(getattr(upload, "name", "") or "").name[:255]
        with transaction.atomic():
            position = (story.clips.order_by("-position").values_list("position", flat=True).first() or 0) + 1
            clip = Clip(
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
            try:
                clip.save()
            except BaseException:
                clip.video.delete(save=False)
                raise
            # robust: with in-process tasks a failed extraction is recorded on the clip, not raised at the uploader.
            story_add_contributor(story=story, user=uploader, contribution="clip")
            transaction.on_commit(lambda: _enqueue_extraction(clip.pk), robust=True)
        return clip
    finally:
        local_path.unlink(missing_ok=True)


def clip_create_from_url(*, story: Story, uploader, url: str) -> Clip:
    """Fetch a clip from a link the user gave, then validate and store it exactly like an upload.

    The fetch only reaches public http(s) hosts, within CLIP_MAX_BYTES and CLIP_FETCH_TIMEOUT_SECONDS
    (see common.safe_fetch); a refused link or file leaves nothing behind.
    """
    fetched = fetch_to_temp_file(url, max_bytes=settings.CLIP_MAX_BYTES, timeout=settings.CLIP_FETCH_TIMEOUT_SECONDS)
    try:
        with open(fetched.path, "rb") as fh:
            return clip_create(story=story, uploader=uploader, upload=File(fh, name=fetched.filename), source_url=url)
    finally:
        fetched.path.unlink(missing_ok=True)


def _enqueue_extraction(clip_id: int) -> None:
    from characters.clips.tasks import extract_clip_frames

    extract_clip_frames.delay(clip_id)


def can_request_extraction(user, clip: Clip) -> bool:
    """Who may re-run a clip's extraction: the story's creator, the clip's uploader, or staff."""
    return bool(
        user is not None
        and user.is_authenticated
        and (user.is_staff or user.pk in (clip.story.created_by_id, clip.uploader_id))
    )


def clip_request_extraction(*, clip: Clip, user) -> Clip:
    """Queue (again) the extraction of a clip; a re-run replaces its candidates.

    Refused while a run is queued or under way, so two runs never write the same clip at once.
    """
    if not can_request_extraction(user, clip):
        raise ServiceError(
            "Only the story's creator, the clip's uploader or staff can re-run its extraction.",
            code="forbidden",
            status_code=403,
        )
    busy = (Clip.Status.UPLOADED, Clip.Status.EXTRACTING)
    updated = Clip.objects.filter(pk=clip.pk).exclude(status__in=busy).update(
        status=Clip.Status.UPLOADED, progress=0, error_message=""
    )
    if not updated:
        raise ServiceError(
            "This clip's frames are being extracted already; wait for the run to finish.",
            code="extraction_in_progress",
            status_code=409,
        )
    transaction.on_commit(lambda: _enqueue_extraction(clip.pk), robust=True)
    clip.refresh_from_db()
    return clip


def _set_progress(clip_id: int, percent: int) -> None:
    Clip.objects.filter(pk=clip_id, status=Clip.Status.EXTRACTING).update(progress=max(0, min(99, percent)))


def clip_extract_frames(*, clip_id: int) -> Clip:
    """Run the extraction pipeline on a clip and replace its candidate frames with the result.

    Safe to re-run. On failure the clip ends `failed` with the reason and keeps no partial frames.
    """
    updated = Clip.objects.filter(pk=clip_id).update(
        status=Clip.Status.EXTRACTING, progress=0, error_message="", warning_message="",
        extraction_started_at=timezone.now(), extraction_finished_at=None,
    )
    if not updated:
        raise ServiceError(f"Clip {clip_id} does not exist.", code="not_found", status_code=404)
    clip = Clip.objects.select_related("story").get(pk=clip_id)
    if not clip.video or not clip.video.storage.exists(clip.video.name):
        message = "The clip's video file is missing from storage. Upload the clip again."
        Clip.objects.filter(pk=clip_id).update(
            status=Clip.Status.FAILED, error_message=message, extraction_finished_at=timezone.now()
        )
        raise ServiceError(message, code="video_missing", status_code=409)
    local_path, is_temp = local_video_copy(clip.video)
    try:
        result = extract_candidates(
            local_path,
            fps=settings.EXTRACTION_FPS,
            top_n=settings.EXTRACTION_TOP_N,
            progress=lambda p: _set_progress(clip_id, p),
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
        if is_temp:
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
                clip=clip, seconds=round(cand.seconds, 3), timestamp=format_timestamp(cand.seconds),
                width=w, height=h, rank=rank, quality=cand.quality,
                sharpness_score=cand.sharpness_score, lighting_score=cand.lighting_score,
                face_score=cand.face_score, composition_score=cand.composition_score,
                dominant=cand.dominant, pose=cand.pose, full_body=cand.full_body, occluded=cand.occluded,
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
                status=Clip.Status.READY, progress=100, frames_analysed=result.frames_analysed,
                people_found=bool(result.frames), warning_message=result.warning,
                last_frame=clip.last_frame.name if result.last_frame is not None else old_last_frame,
                last_frame_seconds=result.last_frame_seconds, extraction_finished_at=timezone.now(),
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
