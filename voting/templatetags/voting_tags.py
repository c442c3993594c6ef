"""The story page's voting section, rendered from the voting app so `characters` never imports `voting`.

Usage in a story template: `{% load voting_tags %}{% voting_panel story %}`.
"""

from __future__ import annotations

from collections import defaultdict

from django import template
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from characters.models import Character, Story
from voting import selectors
from voting.models import CharacterSubmission, VotingSession

register = template.Library()

DECIDED_SHOWN = 4  # the latest results on the story page; older ones live in the admin


def _frames_in_order(submission: CharacterSubmission) -> list:
    return [link.frame for link in submission.frame_links.all()]  # prefetched in picked order


def _entry(row: dict, *, chosen_id: int | None, leader_votes: int) -> dict:
    submission = row["submission"]
    return {
        **row,
        "name": submission.character_name or f"Design #{submission.pk}",
        "frames": _frames_in_order(submission),
        "chosen": row["id"] == chosen_id,
        "leading": leader_votes > 0 and row["votes"] == leader_votes,
    }


def _open_session_card(session: VotingSession, user) -> dict:
    status = selectors.session_status(session)
    my_vote = selectors.vote_of(session, user)
    chosen_id = my_vote.submission_id if my_vote else None
    leader_votes = max((row["votes"] for row in status["submissions"]), default=0)
    # Cards keep the order they were submitted in, so the standings do not reorder them under the voter.
    entries = sorted(
        (_entry(row, chosen_id=chosen_id, leader_votes=leader_votes) for row in status["submissions"]),
        key=lambda entry: entry["id"],
    )
    tied = session.status == VotingSession.Status.TIED
    accepting = session.status == VotingSession.Status.ACTIVE and status["time_remaining"] > 0
    return {
        "session": session,
        "status": status,
        "entries": entries,
        "my_vote": my_vote,
        "tied": tied,
        "accepting": accepting,
        # Tallies are shown once you have voted (no bandwagon before), and to everyone once voting is over.
        "show_tallies": my_vote is not None or not accepting,
    }


def _decided_session_card(session: VotingSession, characters: dict[int | None, Character]) -> dict:
    status = selectors.session_status(session)
    winner_row = next((row for row in status["submissions"] if row["id"] == session.winner_id), None)
    return {
        "session": session,
        "status": status,
        "winner": _entry(winner_row, chosen_id=None, leader_votes=0) if winner_row else None,
        "character": characters.get(session.winner_id),
        "runoff": selectors.runoff_session_of(session) if session.decided_by == VotingSession.Decision.RUNOFF else None,
    }


def _waiting_slots(story: Story, in_open_vote: set[int]) -> list[dict]:
    """Active designs not yet in a vote, by character slot, with what the vote is waiting for."""
    # Keyed as the votes are: by character group, or by slot for designs from before identity.
    by_slot: dict[str, list[CharacterSubmission]] = defaultdict(list)
    for submission in selectors.story_submissions(story).filter(status=CharacterSubmission.Status.ACTIVE):
        if submission.pk not in in_open_vote:
            submission.frames_in_order = _frames_in_order(submission)  # type: ignore[attr-defined]  # for the template
            group_id = submission.character_group_id
            key = f"group-{group_id}" if group_id else submission.character_slot
            by_slot[key].append(submission)
    needed = settings.VOTING_MIN_SUBMISSIONS
    slots = []
    for key, entries in by_slot.items():
        grouped = entries[0].character_group is not None
        label = entries[0].slot_label
        slots.append(
            {
                "key": key,
                "label": label,
                "named": label if grouped else f"the {label}",
                "submissions": entries,
                "missing": max(needed - len(entries), 0),
                "auto_start": settings.VOTING_AUTO_START,
            }
        )
    return sorted(slots, key=lambda slot: slot["label"].lower())


def _has_frames(story: Story, page_clips) -> bool:
    """Whether a design can be made here. The story page already holds its clips with their candidates."""
    if page_clips is not None:
        return any(clip.candidates.all() for clip in page_clips)
    return story.clips.filter(candidates__isnull=False).exists()


@register.inclusion_tag("voting/_voting_panel.html", takes_context=True)
def voting_panel(context, story: Story) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None) or AnonymousUser()

    # One query for the story's sessions: the open ones, then the latest decided ones.
    sessions = list(story.voting_sessions.select_related("decided_by_user", "group").order_by("character_slot", "-pk"))
    open_cards = [_open_session_card(s, user) for s in sessions if s.is_open]
    in_open_vote = {entry["id"] for card in open_cards for entry in card["entries"]}
    decided = sorted(
        (s for s in sessions if not s.is_open),
        key=lambda s: (s.ended_at or s.created_at, s.pk),
        reverse=True,
    )[:DECIDED_SHOWN]
    winner_ids = [session.winner_id for session in decided if session.winner_id]
    # voting -> characters: the locked character of a winning design carries that design's id.
    characters = {
        character.origin_submission_id: character
        for character in Character.objects.filter(origin_submission_id__in=winner_ids)
    }

    mine = []
    if user.is_authenticated:
        mine = list(selectors.story_submissions(story).filter(submitter=user))  # type: ignore[misc]  # signed in
        open_ids = selectors.open_session_ids(s.pk for s in mine)
        for submission in mine:
            submission.frames_in_order = _frames_in_order(submission)  # type: ignore[attr-defined]  # for the template
            submission.open_session_id = open_ids.get(submission.pk)  # type: ignore[attr-defined]  # for the template
            submission.can_withdraw = (  # type: ignore[attr-defined]  # for the template
                submission.status == CharacterSubmission.Status.ACTIVE and submission.open_session_id is None  # type: ignore[attr-defined]
            )

    return {
        "story": story,
        "user": user,
        "request": request,
        "open_cards": open_cards,
        "decided_cards": [_decided_session_card(session, characters) for session in decided],
        "waiting_slots": _waiting_slots(story, in_open_vote),
        "my_submissions": mine,
        "has_frames": _has_frames(story, context.get("clips")),
        "min_submissions": settings.VOTING_MIN_SUBMISSIONS,
    }


@register.filter
def time_left(milliseconds) -> str:
    """A countdown as people read it: "2d 4h" (from 48 h), "23h 12m", "4m 05s"; "ended" at zero."""
    seconds = max(-(-int(milliseconds or 0) // 1000), 0)  # rounded up: "ended" only once time is up
    if seconds == 0:
        return "ended"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 48:
        return f"{hours // 24}d {hours % 24}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


@register.filter
def pick_position(picked: dict, frame_id) -> str:
    """The 1-based pick order of a frame on the submission form, or "" when it is not picked."""
    return str(picked.get(frame_id, "")) if picked else ""
