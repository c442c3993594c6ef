"""The voting rules, written once. Pages, API views, admin actions and tasks call these."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.admin.models import ADDITION, LogEntry
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from characters.clips.services import story_add_contributor
from characters.groups.selectors import frame_group_ids
from characters.models import CandidateFrame, Character, CharacterGroup, Story, group_label_for
from common.db import prepared_statement_cursor
from common.exceptions import Conflict, NotFound, ServiceError
from common.typing import AnyUser, UserType

from . import tallies
from .models import (
    CHARACTER_NAME_MAX,
    DEFAULT_CHARACTER_SLOT,
    STYLE_DESCRIPTION_MAX,
    CharacterSubmission,
    SubmissionFrame,
    Vote,
    VotingSession,
    group_slot,
    group_slot_key,
)

logger = logging.getLogger(__name__)

Decision = VotingSession.Decision
TIE_RULES = ("first_to_final_count", "most_recent_vote", "runoff", "admin")


class VotingError(ServiceError):
    code = "voting_error"


# --- Submissions ----------------------------------------------------------------------------


def _submission_problems(
    story: Story, style: str, name: str, ids: list[int], render_style: str = "", features: list[str] | None = None
) -> list[VotingError]:
    """Everything wrong with a proposed design, so a person fixes it all in one go."""
    from characters.dna import images as dna

    problems = []
    if render_style and render_style not in dna.RENDER_STYLES:
        problems.append(
            VotingError(
                f"Pick a render style among {', '.join(dna.RENDER_STYLES)} (or none).", code="invalid_render_style"
            )
        )
    problems += [VotingError(p, code="invalid_features") for p in dna.stated_feature_problems(list(features or []))]
    if not style:
        problems.append(
            VotingError(
                f"Describe the character's style (up to {STYLE_DESCRIPTION_MAX} characters).", code="style_required"
            )
        )
    elif len(style) > STYLE_DESCRIPTION_MAX:
        problems.append(
            VotingError(
                f"The style description is {len(style)} characters; the limit is {STYLE_DESCRIPTION_MAX}.",
                code="style_too_long",
            )
        )
    if len(name) > CHARACTER_NAME_MAX:
        problems.append(
            VotingError(f"The character name may be at most {CHARACTER_NAME_MAX} characters.", code="name_too_long")
        )
    if not 1 <= len(ids) <= settings.VOTING_MAX_FRAMES:
        problems.append(
            VotingError(
                f"Pick between 1 and {settings.VOTING_MAX_FRAMES} frames (you picked {len(ids)}).", code="frame_count"
            )
        )
    else:
        found = set(CandidateFrame.objects.filter(pk__in=ids, clip__story=story).values_list("pk", flat=True))
        foreign = [i for i in ids if i not in found]
        if foreign:
            problems.append(
                VotingError(
                    f"Frames {', '.join(map(str, foreign))} are not candidate frames of this story's clips. "
                    "Pick frames from this story's clips.",
                    code="foreign_frames",
                    details={"frame_ids": foreign},
                )
            )
    return problems


def _design_group(story: Story, ids: list[int], group_id: object) -> tuple[CharacterGroup | None, VotingError | None]:
    """The one character group a design is of, and a refusal when its frames show another character.

    Every frame must show the design's character: `group_id` when given, else the group all the frames
    share (inferred, so clients that send only `frame_ids` keep working). Frames from before identity
    (no `group_id` on their faces) are not judged.
    """
    group = None
    if group_id not in (None, ""):
        group = CharacterGroup.objects.filter(pk=group_id, story=story).first()  # type: ignore[misc]  # any id the client sent
        if group is None:
            return None, VotingError(
                f"Character group {group_id} is not a character of this story.", code="invalid_group"
            )
    frames = list(CandidateFrame.objects.filter(pk__in=ids, clip__story=story).only("pk", "detections"))
    shown = {frame.pk: set(frame_group_ids(frame)) for frame in frames}
    judged = {pk: groups for pk, groups in shown.items() if groups}
    if not judged:
        return group, None
    if group is None:
        shared = set.intersection(*judged.values())
        if shared:
            # The main face's group when several are shared (a two-shot picked twice).
            first = next(f for f in frames if f.pk in judged)
            chosen = next(g for g in frame_group_ids(first) if g in shared)
            return CharacterGroup.objects.get(pk=chosen), None
        labels = dict(CharacterGroup.objects.filter(pk__in=set().union(*judged.values())).values_list("pk", "label"))
        described = "; ".join(
            f"frame {pk}: {', '.join(labels.get(g, str(g)) for g in sorted(groups))}" for pk, groups in judged.items()
        )
        return None, VotingError(
            f"These frames show different characters ({described}). A design is of one character: pick "
            "frames of one character group.",
            code="mixed_characters",
            details={"frame_groups": {str(k): sorted(v) for k, v in judged.items()}},
        )
    others = [pk for pk in ids if pk in judged and group.pk not in judged[pk]]
    if others:
        return group, VotingError(
            f"Frames {', '.join(map(str, others))} show another character than “{group.label}”. "
            f"Pick frames of “{group.label}” only.",
            code="mixed_characters",
            details={"frame_ids": others, "group_id": group.pk},
        )
    return group, None


# --- Slots: the character a design is for ------------------------------------------------------
#
# A design (and its vote) is for a character group; people see the group's label as the slot. Clients
# from before identity send a free-text `character_slot` slug instead; for them the group is inferred
# from the frames and the slot must agree with it:
# - a slot that is another group's label (as a slug, e.g. "character-b") is refused (`slot_of_another_group`);
# - a slot that names no group names the design's group when that group is still unnamed ("Character A"
#   becomes "Main robot" for `main-robot`, renamed by the submitter and logged as any rename);
# - a group that already has a name keeps it (the slot is then only the client's own word for it).
# Frames with no group (from before identity) keep the slot as it was: their votes are keyed by it.


def slot_group(story: Story, slot: str) -> CharacterGroup | None:
    """The story's group a slot names: its label as a slug, or the stored key `group-<id>`."""
    slot = (slot or "").strip().lower()
    if not slot:
        return None
    for group in CharacterGroup.objects.filter(story=story).order_by("number"):
        if slot in (group_slot(group), group_slot_key(group)):
            return group
    return None


def _is_unnamed(group: CharacterGroup) -> bool:
    return group.label == group_label_for(group.number)


def _label_from_slot(slot: str) -> str:
    return slot.replace("-", " ").replace("_", " ").strip().capitalize()


def _slot_problem(story: Story, group: CharacterGroup, slot: str) -> VotingError | None:
    """A refusal when a client's slot names another character group than the design's frames show."""
    named = slot_group(story, slot)
    if named is None or named.pk == group.pk:
        return None
    return VotingError(
        f"The slot '{slot}' is the character “{named.label}”, but these frames show “{group.label}”. "
        f"Send character_slot '{group_slot(group)}' (or group_id {group.pk}), or pick frames of “{named.label}”.",
        code="slot_of_another_group",
        details={"character_slot": slot, "slot_group_id": named.pk, "group_id": group.pk},
    )


def _mixing_refused(submitter: UserType, group: CharacterGroup | None) -> VotingError | None:
    """Why frames of other characters cannot be let in with a reason, or None when they can: an admin's, for a
    named character."""
    if not submitter.is_staff:
        return VotingError(
            "Only an admin can let frames of other characters into a design. Pick frames of one character, "
            "or ask an admin.",
            code="override_forbidden",
            status_code=403,
        )
    if group is None:
        return VotingError(
            "Say which character the design is of (group_id) when letting in frames of other characters.",
            code="group_required",
        )
    return None


def _all_of(problems: list[VotingError]) -> VotingError:
    """One refusal: the first problem's code and message (as before), and with several, all of them in
    `details["errors"]` (each `{"code", "message", "details"}`)."""
    first = problems[0]
    if len(problems) > 1:
        first.details = {
            **first.details,
            "errors": [{"code": p.code, "message": p.message, "details": p.details} for p in problems],
        }
    return first


def submission_create(
    *,
    story: Story,
    submitter: UserType,
    frame_ids: list[int],
    style_description: str,
    character_slot: str = "",
    character_name: str = "",
    group_id: int | None = None,
    render_style: str = "",
    features_to_keep: list[str] | None = None,
    mixed_characters_reason: str = "",
) -> CharacterSubmission:
    """Propose a design: 1-10 candidate frames from this story's clips plus a style description, and
    optionally the render style and up to 10 features to keep (the DNA records them as stated).

    The frames are of one character (`group_id`, or the group they share); see `_design_group`. A
    `character_slot` (clients from before identity) must agree with that group; see "Slots" above.
    An admin may let in frames of other characters (a costume change the face grouping split) with
    `mixed_characters_reason` and the design's `group_id`; the reason is kept on the design and in the admin log.

    When auto-start is on and this makes enough active submissions for the character, a session opens.
    """
    style_description = (style_description or "").strip()
    character_name = (character_name or "").strip()
    sent_slot = (character_slot or "").strip().lower()
    ids = list(dict.fromkeys(int(i) for i in frame_ids or []))
    render_style = (render_style or "").strip()
    from characters.dna.images import clean_stated_features

    features_to_keep = clean_stated_features(features_to_keep)
    problems = _submission_problems(story, style_description, character_name, ids, render_style, features_to_keep)
    mixed_characters_reason = (mixed_characters_reason or "").strip()
    group, let_in = None, False
    if not any(p.code in ("frame_count", "foreign_frames") for p in problems):
        group, mixed = _design_group(story, ids, group_id)
        if mixed is not None and mixed.code == "mixed_characters" and mixed_characters_reason:
            mixed = _mixing_refused(submitter, group)
            let_in = mixed is None
        if mixed is not None:
            problems.append(mixed)
        elif group is not None and sent_slot:
            problems += [p for p in [_slot_problem(story, group, sent_slot)] if p]
    if problems:
        raise _all_of(problems)
    if not let_in:
        mixed_characters_reason = ""  # nothing was let in: an ordinary design
    character_slot = group_slot_key(group) if group is not None else sent_slot or DEFAULT_CHARACTER_SLOT
    with transaction.atomic():
        submission = CharacterSubmission.objects.create(
            story=story,
            submitter=submitter,
            character_slot=character_slot,
            style_description=style_description,
            character_name=character_name,
            character_group=group,
            render_style=render_style,
            features_to_keep=features_to_keep,
            mixed_characters_reason=mixed_characters_reason,
        )
        SubmissionFrame.objects.bulk_create(
            SubmissionFrame(submission=submission, frame_id=fid, position=pos) for pos, fid in enumerate(ids)
        )
        if let_in:
            LogEntry.objects.log_actions(
                user_id=submitter.pk,
                queryset=[submission],
                action_flag=ADDITION,
                change_message=f"Frames of other characters let into this design of “{group.label}”: "  # type: ignore[union-attr]  # checked above
                f"{mixed_characters_reason}",
            )
        story_add_contributor(story=story, user=submitter, contribution="design")
        if group is not None and sent_slot and _is_unnamed(group) and slot_group(story, sent_slot) is None:
            from characters.groups.services import group_rename

            group_rename(group=group, user=submitter, label=_label_from_slot(sent_slot))
        if settings.VOTING_AUTO_START:
            _auto_start(story, character_slot, group)
    return submission


def _auto_start(story: Story, character_slot: str, group: CharacterGroup | None) -> None:
    if _open_session(story, character_slot, group) is not None:
        return
    if _available_submissions(story, character_slot, group).count() < settings.VOTING_MIN_SUBMISSIONS:
        return
    try:
        with transaction.atomic():  # savepoint: a concurrent auto-start may win the unique constraint
            _session_open(story=story, character_slot=character_slot, group=group)
    except (Conflict, IntegrityError):
        pass


def submission_withdraw(*, submission: CharacterSubmission, user: AnyUser) -> CharacterSubmission:
    if submission.submitter_id != user.pk and not user.is_staff:
        raise ServiceError("Only the submitter can withdraw a submission.", code="forbidden", status_code=403)
    if submission.voting_sessions.filter(status__in=_OPEN).exists():
        raise VotingError("This submission is in an open vote and cannot be withdrawn until it ends.")
    CharacterSubmission.objects.filter(pk=submission.pk).update(status=CharacterSubmission.Status.WITHDRAWN)
    submission.refresh_from_db()
    return submission


# --- Sessions -------------------------------------------------------------------------------

_OPEN = VotingSession.OPEN_STATUSES


def _open_session(story: Story, character_slot: str, group: CharacterGroup | None) -> VotingSession | None:
    sessions = VotingSession.objects.filter(story=story, status__in=_OPEN)
    if group is not None:
        return sessions.filter(group=group).first()
    return sessions.filter(group__isnull=True, character_slot=character_slot).first()


def _available_submissions(
    story: Story, character_slot: str, group: CharacterGroup | None
) -> QuerySet[CharacterSubmission]:
    """Active submissions for the character (its group, or the slot from before identity) that are not
    already in an open session."""
    submissions = CharacterSubmission.objects.filter(story=story, status=CharacterSubmission.Status.ACTIVE)
    if group is not None:
        submissions = submissions.filter(character_group=group)
    else:
        submissions = submissions.filter(character_group__isnull=True, character_slot=character_slot)
    return submissions.exclude(voting_sessions__status__in=_OPEN)


def session_start(
    *,
    story: Story,
    character_slot: str = DEFAULT_CHARACTER_SLOT,
    group_id: int | None = None,
    started_by: UserType | None = None,
    submissions: list[CharacterSubmission] | None = None,
    duration_hours: int | None = None,
    runoff_of: VotingSession | None = None,
) -> VotingSession:
    """Open a voting session for a story's character (its `group`, or a slot naming it; the bare slot for
    designs from before identity) with its active submissions."""
    if group_id is None:
        group = slot_group(story, character_slot)
    else:
        group = CharacterGroup.objects.filter(pk=group_id, story=story).first()
        if group is None:
            raise VotingError(f"Character group {group_id} is not a character of this story.", code="invalid_group")
    return _session_open(
        story=story,
        character_slot=character_slot,
        group=group,
        started_by=started_by,
        submissions=submissions,
        duration_hours=duration_hours,
        runoff_of=runoff_of,
    )


def _already_open(shown: str, existing: VotingSession) -> Conflict:
    return Conflict(
        f"A vote is already open for {shown} in this story (session {existing.pk}).",
        code="session_exists",
        details={"session_id": existing.pk},
    )


def _session_open(
    *,
    story: Story,
    character_slot: str,
    group: CharacterGroup | None,
    started_by: UserType | None = None,
    submissions: list[CharacterSubmission] | None = None,
    duration_hours: int | None = None,
    runoff_of: VotingSession | None = None,
) -> VotingSession:
    """`session_start` once the character is known: `group`, or for designs from before identity the bare slot."""
    if group is not None:
        character_slot = group_slot_key(group)
    shown = f"“{group.label}”" if group is not None else f"'{character_slot}'"
    existing = _open_session(story, character_slot, group)
    if existing is not None:
        raise _already_open(shown, existing)
    entries = (
        list(submissions) if submissions is not None else list(_available_submissions(story, character_slot, group))
    )
    minimum = 2 if runoff_of else settings.VOTING_MIN_SUBMISSIONS
    if len(entries) < minimum:
        opened_meanwhile = _open_session(story, character_slot, group)  # a start racing this one took them
        if opened_meanwhile is not None:
            raise _already_open(shown, opened_meanwhile)
        raise VotingError(
            f"A vote needs at least {minimum} active submissions for {shown}; there are {len(entries)}.",
            code="not_enough_submissions",
        )
    hours = duration_hours or (settings.VOTING_RUNOFF_DURATION_HOURS if runoff_of else settings.VOTING_DURATION_HOURS)
    if not 1 <= hours <= 72:
        raise VotingError("A vote lasts between 1 and 72 hours.", code="bad_duration")
    now = timezone.now()
    try:
        with transaction.atomic():
            session = VotingSession.objects.create(
                story=story,
                character_slot=character_slot,
                group=group,
                starts_at=now,
                ends_at=now + timedelta(hours=hours),
                started_by=started_by,
                runoff_of=runoff_of,
            )
            session.submissions.set(entries)
    except IntegrityError:
        # Two starts at once: the one-open-session constraint let the other one in first.
        existing = _open_session(story, character_slot, group)
        if existing is None:
            raise
        raise _already_open(shown, existing) from None
    ids = [s.pk for s in entries]
    # Counters start once the session is committed; until then readers rebuild from the votes table.
    transaction.on_commit(lambda: tallies.rebuild(session.pk, ids))
    return session


@dataclass(frozen=True)
class VoteResult:
    session_id: int
    submission_id: int
    new_vote_count: int


_SESSION = VotingSession._meta.db_table
_LINK = VotingSession.submissions.through._meta.db_table
_SUBMISSION = CharacterSubmission._meta.db_table
_VOTE = Vote._meta.db_table

# PostgreSQL: the whole vote is one statement, so one round trip and its own commit.
# - `target`: the open session the submission is in, held in SHARE mode until the vote commits. Votes
#   share the lock; any transaction that changes the session row (closing it, moving its end) waits
#   for the votes in flight, and later votes wait for it and then read the changed row (the
#   sub-select names the row before the wait, the output is computed from the row as locked). Not
#   KEY SHARE: a plain UPDATE of the end time would not wait for it, and a vote could read the old end.
# - `cast_vote`: one vote per (session, voter) is the database's unique constraint; a second one
#   inserts nothing.
# - `counted`: the submission's count moves with its vote; that row update serialises the votes of a
#   submission, so the count returned is exact.
_VOTE_STATEMENT = f"""
    WITH target AS (
        SELECT id, (status = %(active)s AND starts_at <= %(now)s AND %(now)s < ends_at) AS open_now,
               win_threshold_percent
        FROM {_SESSION}
        WHERE id = (
            SELECT link.votingsession_id FROM {_LINK} link JOIN {_SESSION} open ON open.id = link.votingsession_id
            WHERE link.charactersubmission_id = %(submission)s AND open.status = ANY(%(open)s) LIMIT 1
        )
        FOR SHARE
    ), cast_vote AS (
        INSERT INTO {_VOTE} (session_id, submission_id, voter_id, created_at)
        SELECT id, %(submission)s, %(voter)s, %(now)s FROM target WHERE open_now
        ON CONFLICT (session_id, voter_id) DO NOTHING
        RETURNING id
    ), counted AS (
        UPDATE {_SUBMISSION} SET vote_count = vote_count + 1
        WHERE id = %(submission)s AND EXISTS (SELECT FROM cast_vote)
        RETURNING vote_count
    )
    SELECT target.id, target.open_now, (SELECT vote_count FROM counted), target.win_threshold_percent FROM target
"""  # noqa: S608 -- table names from the models, values as parameters

# Other databases (SQLite, the embedded default, serialises writers anyway): the same steps in a transaction.
_OPEN_SESSION_OF_SUBMISSION = f"""
    SELECT id, status = %s AND starts_at <= %s AND %s < ends_at, win_threshold_percent FROM {_SESSION}
    WHERE id = (
        SELECT link.votingsession_id FROM {_LINK} link JOIN {_SESSION} open ON open.id = link.votingsession_id
        WHERE link.charactersubmission_id = %s AND open.status IN ({", ".join(["%s"] * len(_OPEN))}) LIMIT 1
    )
"""  # noqa: S608
_INSERT_VOTE = f"""
    INSERT INTO {_VOTE} (session_id, submission_id, voter_id, created_at) VALUES (%s, %s, %s, %s)
    ON CONFLICT (session_id, voter_id) DO NOTHING RETURNING id
"""  # noqa: S608
_COUNT_VOTE = f"UPDATE {_SUBMISSION} SET vote_count = vote_count + 1 WHERE id = %s RETURNING vote_count"  # noqa: S608
_SESSION_COUNTS = f"""
    SELECT s.id, s.vote_count FROM {_SUBMISSION} s JOIN {_LINK} link ON link.charactersubmission_id = s.id
    WHERE link.votingsession_id = %s
"""  # noqa: S608


def _vote_postgresql(submission_id: int, voter_id: int, now: datetime) -> tuple | None:
    """(session id, open now?, new vote_count or None when the voter had voted, win threshold %) or None."""
    with prepared_statement_cursor() as cursor:
        cursor.execute(
            _VOTE_STATEMENT,
            {
                "active": VotingSession.Status.ACTIVE.value,
                "open": [str(status) for status in _OPEN],
                "now": now,
                "submission": submission_id,
                "voter": voter_id,
            },
        )
        row: tuple | None = cursor.fetchone()
        return row


def _vote_in_transaction(submission_id: int, voter_id: int, now: datetime) -> tuple | None:
    at = connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_OPEN_SESSION_OF_SUBMISSION, [VotingSession.Status.ACTIVE, at, at, submission_id, *_OPEN])
        row = cursor.fetchone()
        if row is None:
            return None
        session_id, open_now, percent = row
        if not open_now:
            return session_id, open_now, None, percent
        cursor.execute(_INSERT_VOTE, [session_id, submission_id, voter_id, at])
        if cursor.fetchone() is None:
            return session_id, open_now, None, percent
        cursor.execute(_COUNT_VOTE, [submission_id])
        return session_id, open_now, cursor.fetchone()[0], percent


def _refuse_closed(ended_at: datetime) -> None:
    raise VotingError(
        f"Voting for this session closed at {ended_at:%Y-%m-%d %H:%M} UTC.", code="session_closed", status_code=409
    )


def vote_cast(*, submission_id: int, voter: AnyUser | None) -> VoteResult:
    """One vote for a submission in its open session; one vote per voter per session.

    The app's hot path: on PostgreSQL a single statement, prepared once per connection, and the live tally (which also
    answers the majority check) one Redis call after it.
    """
    if voter is None or not voter.is_authenticated:
        raise ServiceError("Sign in to vote.", code="not_authenticated", status_code=401)
    min_age = settings.VOTING_MIN_ACCOUNT_AGE_HOURS
    now = timezone.now()
    if min_age and now - voter.date_joined < timedelta(hours=min_age):
        raise ServiceError(
            f"Accounts can vote once they are {min_age} hours old.", code="account_too_new", status_code=403
        )
    cast = _vote_postgresql if connection.vendor == "postgresql" else _vote_in_transaction
    row = cast(submission_id, voter.pk, now)
    if row is None:
        if not CharacterSubmission.objects.filter(pk=submission_id).exists():
            raise NotFound(f"There is no submission {submission_id}.")
        # A vote that arrives just after its session ended is told so, not that there never was a vote.
        last = VotingSession.objects.filter(submissions=submission_id).order_by("-starts_at").first()
        if last is not None and last.status not in _OPEN:
            _refuse_closed(last.ended_at or last.ends_at)
        raise VotingError(
            "This submission is not in an open vote. Votes open once a story slot has enough submissions.",
            code="no_open_session",
            status_code=409,
        )
    session_id, open_now, new_count, percent = row
    if not open_now:
        _refuse_closed(VotingSession.objects.values_list("ends_at", flat=True).get(pk=session_id))
    if new_count is None:
        raise Conflict("You have already voted in this session: one vote per person.", code="already_voted")
    if connection.in_atomic_block:
        # Inside a caller's transaction the vote is not committed yet: the tally waits for the commit.
        transaction.on_commit(lambda: tallies.record_vote(session_id, submission_id, new_count))
        session_declare_if_majority(session_id=session_id, percent=percent)
    else:
        counts = tallies.record_vote(session_id, submission_id, new_count)
        session_declare_if_majority(session_id=session_id, counts=counts, percent=percent)
    return VoteResult(session_id=session_id, submission_id=submission_id, new_vote_count=new_count)


def _standings(session: VotingSession) -> list[tuple[int, int]]:
    """(submission_id, votes) from the votes table, most votes first."""
    ids = list(session.submissions.values_list("pk", flat=True))
    counts = tallies.counts_from_votes(session.pk, ids)
    return sorted(counts.items(), key=lambda item: -item[1])


def _majority_winner(standings: list[tuple[int, int]], percent: int = 50) -> int | None:
    """The leader, if it has the seed's threshold: floor(total * percent / 100) + 1 votes, over the quorum."""
    total = sum(n for _, n in standings)
    if not standings or total < settings.VOTING_QUORUM:
        return None
    leader, votes = standings[0]
    return leader if votes >= total * percent // 100 + 1 else None


def session_declare_if_majority(
    *, session_id: int, counts: dict[int, int] | None = None, percent: int | None = None
) -> VotingSession | None:
    """Declare a winner early when one submission reaches the session's threshold (more than half of the
    votes, unless an admin lowered it) and the quorum is met.

    The cheap check reads the live tallies the vote just got back (`counts`), else the submissions'
    counts (which may include earlier rounds: too high is safe, it only triggers the recount); the
    decision itself recounts from the votes table under the session lock.
    """
    if counts is None:
        with connection.cursor() as cursor:
            cursor.execute(_SESSION_COUNTS, [session_id])
            counts = dict(cursor.fetchall())
    if percent is None:
        percent = VotingSession.objects.values_list("win_threshold_percent", flat=True).get(pk=session_id)
    if _majority_winner(sorted(counts.items(), key=lambda item: -item[1]), percent) is None:
        return None
    with transaction.atomic():
        session = VotingSession.objects.select_for_update().get(pk=session_id)
        return _declare_if_over_threshold(session)


def _declare_if_over_threshold(session: VotingSession) -> VotingSession | None:
    """Recount a locked session from the votes table and declare its leader if it has the threshold."""
    if session.status != VotingSession.Status.ACTIVE:
        return None
    percent = session.win_threshold_percent
    winner = _majority_winner(_standings(session), percent)
    if winner is None:
        return None
    reason = (
        "More than half of the votes over quorum."
        if percent == 50
        else f"More than {percent} % of the votes over quorum (threshold lowered by an admin)."
    )
    return _declare_winner(session, winner, Decision.MAJORITY, reason=reason)


def _declare_winner(
    session: VotingSession,
    winner_id: int,
    decided_by: str,
    *,
    reason: str = "",
    user: UserType | None = None,
) -> VotingSession:
    """Record the end of a session with a winner and emit the winner event once, after commit."""
    now = timezone.now()
    session.status = VotingSession.Status.COMPLETE
    session.winner_id = winner_id
    session.decided_by = decided_by
    session.decided_by_user = user
    session.decision_reason = reason
    session.ended_at = now
    session.save(update_fields=["status", "winner", "decided_by", "decided_by_user", "decision_reason", "ended_at"])
    entries = session.submissions.all()
    entries.filter(pk=winner_id).update(status=CharacterSubmission.Status.WON)
    entries.exclude(pk=winner_id).filter(status=CharacterSubmission.Status.ACTIVE).update(
        status=CharacterSubmission.Status.LOST
    )
    winner = CharacterSubmission.objects.get(pk=winner_id)
    payload = {
        "session_id": session.pk,
        "story_id": session.story_id,
        "submission_id": winner.pk,
        "frame_ids": winner.frame_ids,
        "character_name": winner.character_name,
        "submitter_id": winner.submitter_id,
        "votes": winner.vote_count,
        "decided_by": decided_by,
    }
    transaction.on_commit(lambda: winner_declared(**payload))
    logger.info("Session %s won by submission %s (%s)", session.pk, winner_id, decided_by)
    return session


def winner_declared(**decision: Any) -> None:
    """After the commit that declared a winner: lock the design into a Character DNA, on the extraction queue.

    `decision`: session_id, story_id, submission_id, frame_ids, character_name, submitter_id, votes, decided_by.
    """
    from .tasks import lock_winning_submission

    try:
        lock_winning_submission.delay(decision["submission_id"])
    except Exception:  # the vote stands either way; the lock can be re-run from the admin
        logger.exception("Locking the winner of submission %s failed", decision["submission_id"])


def _first_to_final_count(session: VotingSession, tied: list[int]) -> int:
    """Among tied submissions, the one whose last vote came earliest reached its final count first."""
    last_votes = dict(
        Vote.objects.filter(session=session, submission_id__in=tied)
        .values("submission_id")
        .annotate(last=Max("created_at"))
        .values_list("submission_id", "last")
    )
    return min(tied, key=lambda sid: (last_votes.get(sid) or timezone.now(), sid))


def _most_recent_vote(session: VotingSession, tied: list[int]) -> int:
    """The seed's "most recent votes wins": among tied submissions, the one that received the latest vote."""
    last_votes = dict(
        Vote.objects.filter(session=session, submission_id__in=tied)
        .values("submission_id")
        .annotate(last=Max("created_at"))
        .values_list("submission_id", "last")
    )
    return max(tied, key=lambda sid: (last_votes[sid], -sid))  # tied at the top: each has votes


def session_close(*, session_id: int, now: datetime | None = None) -> VotingSession:
    """Close a session whose time is up: plurality wins; a tie follows VOTING_TIE_RULE. Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        session = VotingSession.objects.select_for_update().get(pk=session_id)
        if session.status != VotingSession.Status.ACTIVE or session.ends_at > now:
            return session
        standings = _standings(session)
        top = standings[0][1] if standings else 0
        if top == 0:
            session.status = VotingSession.Status.COMPLETE
            session.decided_by = Decision.NO_VOTES
            session.decision_reason = "The vote ended with no votes; its submissions can enter a new vote."
            session.ended_at = now
            session.save(update_fields=["status", "decided_by", "decision_reason", "ended_at"])
            return session
        tied = [sid for sid, n in standings if n == top]
        if len(tied) == 1:
            return _declare_winner(session, tied[0], Decision.EXPIRY, reason=f"Most votes ({top}) at expiry.")
        rule = settings.VOTING_TIE_RULE
        if rule not in TIE_RULES:
            raise ImproperlyConfiguredTieRule(rule)
        tie_text = f"Tied at {top} votes between submissions {', '.join(f'#{t}' for t in tied)}."
        if rule == "most_recent_vote":
            winner = _most_recent_vote(session, tied)
            return _declare_winner(
                session, winner, Decision.TIE_BREAK, reason=f"{tie_text} #{winner} received the most recent vote."
            )
        if rule == "first_to_final_count" or (rule == "runoff" and session.runoff_of_id):
            winner = _first_to_final_count(session, tied)
            return _declare_winner(
                session, winner, Decision.TIE_BREAK, reason=f"{tie_text} #{winner} reached {top} votes first."
            )
        if rule == "runoff":
            return _send_to_runoff(session, tied, reason=tie_text)
        session.status = VotingSession.Status.TIED
        session.decision_reason = f"{tie_text} Waiting for an admin to decide."
        session.save(update_fields=["status", "decision_reason"])
        return session


class ImproperlyConfiguredTieRule(ServiceError):
    def __init__(self, rule: str):
        super().__init__(f"VOTING_TIE_RULE must be one of {', '.join(TIE_RULES)}, not '{rule}'.", status_code=500)


def _send_to_runoff(
    session: VotingSession,
    tied: list[int],
    *,
    reason: str,
    user: UserType | None = None,
) -> VotingSession:
    session.status = VotingSession.Status.COMPLETE
    session.decided_by = Decision.RUNOFF
    session.decided_by_user = user
    session.ended_at = timezone.now()
    session.save(update_fields=["status", "decided_by", "decided_by_user", "ended_at"])
    runoff = _session_open(
        story=session.story,
        character_slot=session.character_slot,
        group=session.group,
        submissions=list(CharacterSubmission.objects.filter(pk__in=tied)),
        runoff_of=session,
        started_by=user,
    )
    session.decision_reason = f"{reason} Runoff session {runoff.pk} opened between them."
    session.save(update_fields=["decision_reason"])
    # Losers of the first round that were not in the tie are out.
    session.submissions.exclude(pk__in=tied).filter(status=CharacterSubmission.Status.ACTIVE).update(
        status=CharacterSubmission.Status.LOST
    )
    return session


def close_expired_sessions(now: datetime | None = None) -> int:
    """Close every active session past its end; run by Celery beat. Returns how many were closed."""
    now = now or timezone.now()
    closed = 0
    for session_id in VotingSession.objects.filter(status=VotingSession.Status.ACTIVE, ends_at__lte=now).values_list(
        "pk", flat=True
    ):
        session = session_close(session_id=session_id, now=now)
        closed += session.status != VotingSession.Status.ACTIVE
    return closed


def _require_staff(user: AnyUser | None) -> UserType:
    if user is None or not user.is_staff:
        raise ServiceError("Only admins can do this.", code="forbidden", status_code=403)
    return user


def session_override(*, session_id: int, submission_id: int, admin: AnyUser | None, reason: str) -> VotingSession:
    """An admin names the winner of an open (or tied) session, with a recorded reason."""
    admin = _require_staff(admin)
    reason = (reason or "").strip()
    if not reason:
        raise VotingError("Give a reason for the override; it is kept with the result.", code="reason_required")
    with transaction.atomic():
        session = VotingSession.objects.select_for_update().get(pk=session_id)
        if session.status not in _OPEN:
            raise VotingError(
                f"Session {session.pk} has already ended ({session.get_status_display()}).",
                code="session_closed",
                status_code=409,
            )
        if not session.submissions.filter(pk=submission_id).exists():
            raise VotingError(f"Submission {submission_id} is not part of session {session.pk}.", code="not_in_session")
        return _declare_winner(session, submission_id, Decision.ADMIN, reason=reason, user=admin)


def session_cancel(*, session_id: int, admin: AnyUser | None, reason: str = "") -> VotingSession:
    admin = _require_staff(admin)
    with transaction.atomic():
        session = VotingSession.objects.select_for_update().get(pk=session_id)
        if session.status not in _OPEN:
            raise VotingError(f"Session {session.pk} has already ended.", code="session_closed", status_code=409)
        session.status = VotingSession.Status.CANCELLED
        session.decided_by = Decision.CANCELLED
        session.decided_by_user = admin
        session.decision_reason = reason.strip() or "Cancelled by an admin."
        session.ended_at = timezone.now()
        session.save(update_fields=["status", "decided_by", "decided_by_user", "decision_reason", "ended_at"])
        return session


def session_start_runoff(*, session_id: int, admin: AnyUser | None) -> VotingSession:
    """An admin sends a tied (or open) session's leaders to a runoff."""
    admin = _require_staff(admin)
    with transaction.atomic():
        session = VotingSession.objects.select_for_update().get(pk=session_id)
        if session.status not in _OPEN:
            raise VotingError(f"Session {session.pk} has already ended.", code="session_closed", status_code=409)
        standings = _standings(session)
        top = standings[0][1] if standings else 0
        tied = [sid for sid, n in standings if n == top]
        if len(tied) < 2:
            raise VotingError("A runoff needs at least two submissions tied for the lead.", code="no_tie")
        return _send_to_runoff(
            session, tied, reason=f"Admin sent the {len(tied)} leaders ({top} votes) to a runoff.", user=admin
        )


def session_end_now(*, session_id: int, admin: AnyUser | None) -> VotingSession:
    """An admin ends an active session early; it is then decided exactly as at expiry."""
    admin = _require_staff(admin)
    now = timezone.now()
    updated = VotingSession.objects.filter(pk=session_id, status=VotingSession.Status.ACTIVE).update(ends_at=now)
    if not updated:
        raise VotingError(f"Session {session_id} is not open for voting.", code="session_closed", status_code=409)
    return session_close(session_id=session_id, now=now)


def _admin_reason(reason: str, what: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise VotingError(f"Give a reason for {what}; it is kept in the admin log.", code="reason_required")
    return reason


def session_extend(*, session_id: int, admin: AnyUser | None, hours: int, reason: str) -> VotingSession:
    """Deadlock remedy: give an open session `hours` more (1-72) from its end, or from now if that has passed.

    A tie waiting for an admin goes back to voting. Votes in flight hold the session in SHARE mode, so the
    new end is seen by every vote after this commits.
    """
    _require_staff(admin)
    reason = _admin_reason(reason, "extending a vote")
    if not isinstance(hours, int) or not 1 <= hours <= 72:
        raise VotingError("Extend a vote by 1 to 72 hours.", code="invalid_hours")
    with transaction.atomic():
        session = VotingSession.objects.select_for_update().get(pk=session_id)
        if session.status not in _OPEN:
            raise VotingError(f"Session {session.pk} has already ended.", code="session_closed", status_code=409)
        session.ends_at = max(session.ends_at, timezone.now()) + timedelta(hours=hours)
        fields = ["ends_at"]
        if session.status == VotingSession.Status.TIED:
            session.status, session.decision_reason = VotingSession.Status.ACTIVE, ""
            fields += ["status", "decision_reason"]
        session.save(update_fields=fields)
    logger.info("Session %s extended by %s h to %s by %s: %s", session_id, hours, session.ends_at, admin, reason)
    return session


def session_lower_threshold(*, session_id: int, admin: AnyUser | None, percent: int, reason: str) -> VotingSession:
    """Deadlock remedy: lower an active session's win threshold (e.g. 40: floor(votes x 0.4) + 1 wins).

    The quorum still applies. The session is recounted at once, so a leader already over the new
    threshold wins now.
    """
    _require_staff(admin)
    reason = _admin_reason(reason, "lowering the threshold")
    with transaction.atomic():
        session = VotingSession.objects.select_for_update().get(pk=session_id)
        if session.status != VotingSession.Status.ACTIVE:
            raise VotingError(f"Session {session.pk} is not open for voting.", code="session_closed", status_code=409)
        if not isinstance(percent, int) or not 1 <= percent < session.win_threshold_percent:
            raise VotingError(
                f"The new threshold must be between 1 and {session.win_threshold_percent - 1} %.",
                code="invalid_threshold",
            )
        session.win_threshold_percent = percent
        session.save(update_fields=["win_threshold_percent"])
        _declare_if_over_threshold(session)
    logger.info("Session %s threshold lowered to %s %% by %s: %s", session_id, percent, admin, reason)
    return session


# --- Locking the winner -----------------------------------------------------------------------


def submission_lock_winner(*, submission_id: int, character_name: str = "") -> Character:
    """Lock a winning submission into its canonical character (idempotent: one character per submission)."""
    from characters.dna.services import character_lock

    submission = CharacterSubmission.objects.select_related("story", "submitter").get(pk=submission_id)
    if submission.status != CharacterSubmission.Status.WON:
        raise VotingError(f"Submission {submission.pk} has not won a vote.", code="not_winner", status_code=409)
    return character_lock(
        story=submission.story,
        name=character_name or submission.character_name or f"{submission.story.title} {submission.slot_label}",
        frame_ids=submission.frame_ids,
        creator=submission.submitter,
        votes=submission.vote_count,
        description=submission.style_description,
        origin_submission_id=submission.pk,
        render_style=submission.render_style,
        features_to_keep=submission.features_to_keep,
        group_id=submission.character_group_id,
    )


def submission_lock_by_admin(
    *,
    submission_id: int,
    admin: AnyUser | None,
    character_name: str = "",
    story_id: int | None = None,
) -> Character:
    """The admin lock: a submission still in an open vote wins it by admin decision, then is locked.

    With `story_id`, the submission must belong to that story (the lock endpoint names the story).
    """
    admin = _require_staff(admin)
    submission = CharacterSubmission.objects.filter(pk=submission_id).first()
    if submission is None or (story_id is not None and submission.story_id != story_id):
        where = f"Story {story_id} has" if story_id is not None else "There is"
        raise NotFound(f"{where} no submission {submission_id}.")
    character_name = (character_name or "").strip()
    if character_name and len(character_name) <= CHARACTER_NAME_MAX:
        # The winner event locks the character under the submission's name: give it the admin's.
        CharacterSubmission.objects.filter(pk=submission.pk).update(character_name=character_name)
    if submission.status != CharacterSubmission.Status.WON:
        session = submission.voting_sessions.filter(status__in=_OPEN).first()
        if session is None:
            raise VotingError(
                f"Submission {submission.pk} is {submission.get_status_display().lower()} and not in an open vote; "
                "only a winner or a submission in an open vote can be locked.",
                code="not_lockable",
                status_code=409,
            )
        session_override(
            session_id=session.pk, submission_id=submission.pk, admin=admin, reason="Locked by an admin (override)."
        )
    return submission_lock_winner(submission_id=submission.pk, character_name=character_name)
