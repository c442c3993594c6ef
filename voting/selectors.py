"""Reads for voting: session status with live tallies, a story's open sessions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from characters.models import Story
from common.typing import AnyUser

from . import tallies
from .models import CharacterSubmission, SubmissionFrame, Vote, VotingSession, slot_slug


def _submissions_with_frames() -> QuerySet[CharacterSubmission]:
    return CharacterSubmission.objects.select_related("submitter", "character_group").prefetch_related(
        Prefetch("frame_links", queryset=SubmissionFrame.objects.select_related("frame").order_by("position"))
    )


def session_status(session: VotingSession) -> dict:
    """The status body: totals, each submission's votes and share, most votes first, and time left."""
    entries = list(_submissions_with_frames().filter(voting_sessions=session))
    counts = tallies.current_counts(session.pk, [s.pk for s in entries])
    total = sum(counts.values())
    rows: list[dict[str, Any]] = [
        {
            "id": s.pk,
            "submission": s,
            "creator": s.submitter.username,
            "character_name": s.character_name,
            "style": s.style_description,
            "frame_ids": s.frame_ids,
            "votes": counts.get(s.pk, 0),
            "percentage": round(100 * counts.get(s.pk, 0) / total) if total else 0,
        }
        for s in entries
    ]
    rows.sort(key=lambda row: (-row["votes"], row["id"]))
    remaining = max(0.0, (session.ends_at - timezone.now()).total_seconds()) if session.status == "active" else 0.0
    return {
        "session_id": session.pk,
        "story_id": session.story_id,
        "character_slot": slot_slug(session),
        "group_id": session.group_id,
        "slot_label": session.slot_label,
        "status": session.status,
        "total_votes": total,
        "submissions": rows,
        "starts_at": session.starts_at,
        "ends_at": session.ends_at,
        "time_remaining": int(remaining * 1000),  # milliseconds, as the seed's status body
        "winner_id": session.winner_id,
        "decided_by": session.decided_by,
        "decision_reason": session.decision_reason,
        "runoff_of": session.runoff_of_id,
        "win_threshold_percent": session.win_threshold_percent,
    }


def story_open_sessions(story: Story) -> QuerySet[VotingSession]:
    return story.voting_sessions.filter(status__in=VotingSession.OPEN_STATUSES).order_by("character_slot")


def story_submissions(story: Story) -> QuerySet[CharacterSubmission]:
    return _submissions_with_frames().filter(story=story).order_by("character_slot", "-created_at")


def vote_of(session: VotingSession, user: AnyUser) -> Vote | None:
    if not user.is_authenticated:
        return None
    return Vote.objects.filter(session=session, voter=user).first()


def open_session_ids(submission_ids: Iterable[int]) -> dict[int, int]:
    """{submission_id: id of the open session it is in}; a submission is in at most one open session."""
    links = VotingSession.submissions.through.objects.filter(
        charactersubmission_id__in=list(submission_ids), votingsession__status__in=VotingSession.OPEN_STATUSES
    )
    return dict(links.values_list("charactersubmission_id", "votingsession_id"))


def runoff_session_of(session: VotingSession) -> VotingSession | None:
    """The runoff session opened to settle `session`'s tie (the latest, should there be several)."""
    return session.runoffs.order_by("-pk").first()
