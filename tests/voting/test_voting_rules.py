"""The voting rules through the services every entry point calls."""

from datetime import timedelta

import pytest
from django.utils import timezone

from common.exceptions import Conflict, ServiceError
from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory, UserFactory
from voting import services, tallies
from voting.models import CharacterSubmission, Vote, VotingSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def story():
    return StoryFactory()


@pytest.fixture
def frames(story):
    clip = ClipFactory(story=story)
    return [CandidateFrameFactory(clip=clip) for _ in range(4)]


@pytest.fixture
def winner_events(monkeypatch):
    """What each declared winner hands on after its commit (the lock is still queued)."""
    received = []
    declared = services.winner_declared

    def recording(**decision):
        received.append(decision)
        declared(**decision)

    monkeypatch.setattr(services, "winner_declared", recording)
    return received


def submit(story, frames, name="Hero", user=None, slot="protagonist"):
    return services.submission_create(
        story=story,
        submitter=user or UserFactory(),
        frame_ids=[f.pk for f in frames[:2]],
        style_description=f"{name}: calm astronaut in an orange suit",
        character_name=name,
        character_slot=slot,
    )


def cast(submission, n):
    for _ in range(n):
        services.vote_cast(submission_id=submission.pk, voter=UserFactory())


def expire(session):
    VotingSession.objects.filter(pk=session.pk).update(
        starts_at=timezone.now() - timedelta(hours=25), ends_at=timezone.now() - timedelta(seconds=1)
    )


# --- submissions --------------------------------------------------------------------------


def test_submission_keeps_frames_in_order(story, frames):
    sub = services.submission_create(
        story=story,
        submitter=UserFactory(),
        frame_ids=[frames[2].pk, frames[0].pk],
        style_description="Short silver hair",
        character_name="Nova",
    )
    assert sub.frame_ids == [frames[2].pk, frames[0].pk]
    assert sub.status == "active" and sub.vote_count == 0


def test_frames_of_another_story_are_refused(story, frames):
    foreign = CandidateFrameFactory()  # a clip of another story
    with pytest.raises(ServiceError) as err:
        services.submission_create(
            story=story, submitter=UserFactory(), frame_ids=[frames[0].pk, foreign.pk], style_description="x"
        )
    assert err.value.details == {"frame_ids": [foreign.pk]}
    assert str(foreign.pk) in err.value.message
    assert CharacterSubmission.objects.count() == 0


@pytest.mark.parametrize("count", [0, 11])
def test_frame_count_must_be_1_to_10(story, count):
    clip = ClipFactory(story=story)
    ids = [CandidateFrameFactory(clip=clip).pk for _ in range(count)]
    with pytest.raises(ServiceError, match="between 1 and 10"):
        services.submission_create(story=story, submitter=UserFactory(), frame_ids=ids, style_description="x")


@pytest.mark.parametrize("text", ["", "   ", "x" * 501])
def test_style_description_required_and_limited(story, frames, text):
    with pytest.raises(ServiceError):
        services.submission_create(
            story=story, submitter=UserFactory(), frame_ids=[frames[0].pk], style_description=text
        )


# --- starting sessions --------------------------------------------------------------------


def test_second_submission_opens_a_session(story, frames):
    first = submit(story, frames, "A")
    assert not VotingSession.objects.exists()
    second = submit(story, frames, "B")
    session = VotingSession.objects.get()
    assert set(session.submissions.values_list("pk", flat=True)) == {first.pk, second.pk}
    assert session.status == "active"
    assert session.ends_at - session.starts_at == timedelta(hours=24)


def test_auto_start_can_be_switched_off(story, frames, settings):
    settings.VOTING_AUTO_START = False
    submit(story, frames, "A")
    submit(story, frames, "B")
    assert not VotingSession.objects.exists()
    session = services.session_start(story=story, started_by=UserFactory(is_staff=True))
    assert session.submissions.count() == 2


def test_start_needs_enough_submissions(story, frames, settings):
    settings.VOTING_AUTO_START = False
    submit(story, frames, "A")
    with pytest.raises(ServiceError, match="at least 2"):
        services.session_start(story=story)


def test_second_open_session_for_a_slot_is_a_conflict(story, frames):
    submit(story, frames, "A")
    submit(story, frames, "B")
    open_session = VotingSession.objects.get()
    submit(story, frames, "C")
    submit(story, frames, "D")
    with pytest.raises(Conflict) as err:
        services.session_start(story=story)
    assert err.value.details == {"session_id": open_session.pk}


def test_slots_are_independent(story, frames):
    submit(story, frames, "A", slot="protagonist")
    submit(story, frames, "B", slot="villain")
    assert not VotingSession.objects.exists()
    submit(story, frames, "C", slot="villain")
    assert VotingSession.objects.get().character_slot == "villain"


# --- casting votes ------------------------------------------------------------------------


@pytest.fixture
def pair(story, frames):
    a = submit(story, frames, "A")
    b = submit(story, frames, "B")
    return a, b, VotingSession.objects.get()


def test_vote_counts_and_one_vote_per_session(pair):
    a, b, session = pair
    voter = UserFactory()
    result = services.vote_cast(submission_id=a.pk, voter=voter)
    assert result.new_vote_count == 1
    with pytest.raises(Conflict, match="already voted"):
        services.vote_cast(submission_id=b.pk, voter=voter)
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.vote_count, b.vote_count) == (1, 0)
    assert Vote.objects.filter(session=session).count() == 1


def test_submitter_may_vote_for_own_submission(pair):
    a, _, _ = pair
    assert services.vote_cast(submission_id=a.pk, voter=a.submitter).new_vote_count == 1


def test_vote_outside_the_window_is_refused(pair):
    a, _, session = pair
    expire(session)
    with pytest.raises(ServiceError, match="closed") as err:
        services.vote_cast(submission_id=a.pk, voter=UserFactory())
    assert err.value.status_code == 409
    assert not Vote.objects.exists()


def test_vote_for_a_submission_not_in_a_session(story, frames):
    lone = submit(story, frames, "A")
    with pytest.raises(ServiceError, match="not in an open vote"):
        services.vote_cast(submission_id=lone.pk, voter=UserFactory())


def test_unknown_submission_is_not_found():
    with pytest.raises(ServiceError) as err:
        services.vote_cast(submission_id=999999, voter=UserFactory())
    assert err.value.status_code == 404


def test_minimum_account_age(pair, settings):
    a, _, _ = pair
    settings.VOTING_MIN_ACCOUNT_AGE_HOURS = 48
    with pytest.raises(ServiceError, match="48 hours") as err:
        services.vote_cast(submission_id=a.pk, voter=UserFactory())
    assert err.value.status_code == 403
    old = UserFactory(date_joined=timezone.now() - timedelta(days=3))
    assert services.vote_cast(submission_id=a.pk, voter=old).new_vote_count == 1


# --- deciding -----------------------------------------------------------------------------


def test_first_vote_does_not_win_without_quorum(pair, winner_events):
    a, _, session = pair
    cast(a, 3)  # 100 % of the votes, but 3 < quorum 10
    session.refresh_from_db()
    assert session.status == "active" and session.winner is None
    assert winner_events == []


def test_majority_over_quorum_wins_early(pair, winner_events, django_capture_on_commit_callbacks):
    a, b, session = pair
    with django_capture_on_commit_callbacks(execute=True):
        cast(b, 4)
        cast(a, 5)
        session.refresh_from_db()
        assert session.status == "active"  # 9 votes: below quorum
        cast(a, 1)  # 6 of 10: majority at quorum
    session.refresh_from_db()
    assert session.status == "complete" and session.winner_id == a.pk and session.decided_by == "majority"
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, b.status) == ("won", "lost")
    assert len(winner_events) == 1
    assert winner_events[0]["submission_id"] == a.pk and winner_events[0]["votes"] == 6
    assert winner_events[0]["frame_ids"] == a.frame_ids
    with pytest.raises(ServiceError, match="Voting for this session closed at"):
        services.vote_cast(submission_id=b.pk, voter=UserFactory())


def test_even_split_at_quorum_is_no_majority(pair):
    a, b, session = pair
    cast(a, 5)
    cast(b, 5)
    session.refresh_from_db()
    assert session.status == "active"


def test_plurality_wins_at_expiry_and_closing_is_idempotent(pair, winner_events, django_capture_on_commit_callbacks):
    a, b, session = pair
    cast(a, 2)
    cast(b, 1)
    expire(session)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.close_expired_sessions() == 1
        assert services.close_expired_sessions() == 0
        services.session_close(session_id=session.pk)
    session.refresh_from_db()
    assert (session.status, session.winner_id, session.decided_by) == ("complete", a.pk, "expiry")
    assert len(winner_events) == 1


def test_unexpired_session_is_not_closed(pair):
    a, _, session = pair
    cast(a, 1)
    assert services.close_expired_sessions() == 0
    assert services.session_close(session_id=session.pk).status == "active"


def test_no_votes_at_expiry(pair):
    _, _, session = pair
    expire(session)
    services.close_expired_sessions()
    session.refresh_from_db()
    assert (session.status, session.winner, session.decided_by) == ("complete", None, "no_votes")


def test_tie_first_to_final_count(pair, settings):
    settings.VOTING_TIE_RULE = "first_to_final_count"
    a, b, session = pair
    cast(b, 1)
    cast(a, 2)
    cast(b, 1)  # b reached 2 last
    Vote.objects.filter(submission=a).update(created_at=timezone.now() - timedelta(minutes=5))
    expire(session)
    services.close_expired_sessions()
    session.refresh_from_db()
    assert (session.winner_id, session.decided_by) == (a.pk, "tie_break")
    assert "reached 2 votes first" in session.decision_reason


def test_tie_goes_to_runoff_between_leaders_only(story, frames, settings):
    settings.VOTING_TIE_RULE = "runoff"
    settings.VOTING_AUTO_START = False
    a, b, c = (submit(story, frames, n) for n in "ABC")
    session = services.session_start(story=story)
    cast(a, 2)
    cast(b, 2)
    cast(c, 1)
    expire(session)
    services.close_expired_sessions()
    session.refresh_from_db()
    assert (session.status, session.decided_by, session.winner) == ("complete", "runoff", None)
    runoff = VotingSession.objects.get(runoff_of=session)
    assert set(runoff.submissions.values_list("pk", flat=True)) == {a.pk, b.pk}
    assert runoff.status == "active" and f"Runoff session {runoff.pk}" in session.decision_reason
    c.refresh_from_db()
    assert c.status == "lost"
    # A voter of the first round may vote again in the runoff.
    cast(b, 1)
    expire(runoff)
    services.close_expired_sessions()
    runoff.refresh_from_db()
    assert (runoff.winner_id, runoff.decided_by) == (b.pk, "expiry")


def test_tied_runoff_falls_back_to_first_to_final_count(pair, settings):
    settings.VOTING_TIE_RULE = "runoff"
    a, b, session = pair
    cast(a, 1)
    cast(b, 1)
    expire(session)
    services.close_expired_sessions()
    runoff = VotingSession.objects.get(runoff_of=session)
    cast(a, 1)
    cast(b, 1)
    expire(runoff)
    services.close_expired_sessions()
    runoff.refresh_from_db()
    assert runoff.status == "complete" and runoff.decided_by == "tie_break"
    assert VotingSession.objects.count() == 2


def test_tie_left_for_admin_then_override(pair, settings, winner_events, django_capture_on_commit_callbacks):
    settings.VOTING_TIE_RULE = "admin"
    a, b, session = pair
    cast(a, 1)
    cast(b, 1)
    expire(session)
    services.close_expired_sessions()
    session.refresh_from_db()
    assert session.status == "tied" and "Waiting for an admin" in session.decision_reason
    admin = UserFactory(is_staff=True)
    with pytest.raises(ServiceError, match="reason"):
        services.session_override(session_id=session.pk, submission_id=b.pk, admin=admin, reason=" ")
    with django_capture_on_commit_callbacks(execute=True):
        services.session_override(session_id=session.pk, submission_id=b.pk, admin=admin, reason="Closer to canon")
    session.refresh_from_db()
    assert (session.status, session.winner_id, session.decided_by) == ("complete", b.pk, "admin")
    assert session.decided_by_user == admin and session.decision_reason == "Closer to canon"
    assert [e["submission_id"] for e in winner_events] == [b.pk]


def test_override_rules(pair):
    a, _, session = pair
    with pytest.raises(ServiceError) as err:
        services.session_override(session_id=session.pk, submission_id=a.pk, admin=UserFactory(), reason="mine")
    assert err.value.status_code == 403
    other_frame = CandidateFrameFactory()
    other = submit(other_frame.clip.story, [other_frame], "X")
    with pytest.raises(ServiceError, match="not part of session"):
        services.session_override(
            session_id=session.pk, submission_id=other.pk, admin=UserFactory(is_staff=True), reason="r"
        )
    services.session_override(session_id=session.pk, submission_id=a.pk, admin=UserFactory(is_staff=True), reason="r")
    with pytest.raises(ServiceError, match="already ended"):
        services.session_override(
            session_id=session.pk, submission_id=a.pk, admin=UserFactory(is_staff=True), reason="again"
        )


def test_cancel_and_admin_runoff(pair):
    a, b, session = pair
    admin = UserFactory(is_staff=True)
    cast(a, 1)
    with pytest.raises(ServiceError, match="tied for the lead"):
        services.session_start_runoff(session_id=session.pk, admin=admin)
    cast(b, 1)
    services.session_start_runoff(session_id=session.pk, admin=admin)
    runoff = VotingSession.objects.get(runoff_of=session)
    services.session_cancel(session_id=runoff.pk, admin=admin, reason="Wrong slot")
    runoff.refresh_from_db()
    assert (runoff.status, runoff.decided_by_user, runoff.decision_reason) == ("cancelled", admin, "Wrong slot")


def test_tallies_match_votes_table(pair):
    a, b, session = pair
    cast(a, 3)
    cast(b, 2)
    counts = tallies.current_counts(session.pk, [a.pk, b.pk])
    assert counts == {a.pk: 3, b.pk: 2}
    a.refresh_from_db()
    assert a.vote_count == Vote.objects.filter(submission=a).count() == 3


def test_submitting_a_design_makes_a_story_contributor(story, frames):
    from characters.clips.selectors import story_contributors

    designer = UserFactory(username="designer")
    assert designer not in story_contributors(story)
    submit(story, frames, "A", user=designer)
    assert designer in story_contributors(story)
    submit(story, frames, "B", user=designer)  # once per story
    assert list(story_contributors(story)).count(designer) == 1


# --- deadlock remedies (the seed's troubleshooting) and the "most recent votes wins" tie rule -----


def test_tie_most_recent_vote_wins(pair, settings):
    settings.VOTING_TIE_RULE = "most_recent_vote"
    a, b, session = pair
    cast(a, 2)
    cast(b, 2)
    Vote.objects.filter(submission=b).update(created_at=timezone.now() - timedelta(minutes=5))
    first_of_a = Vote.objects.filter(submission=a).order_by("pk").first()
    Vote.objects.filter(pk=first_of_a.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    expire(session)
    services.close_expired_sessions()
    session.refresh_from_db()
    assert (session.winner_id, session.decided_by) == (a.pk, "tie_break")  # a has the latest vote
    assert "most recent vote" in session.decision_reason


def test_admin_extends_a_session_and_a_tie_goes_back_to_voting(pair, settings):
    settings.VOTING_TIE_RULE = "admin"
    a, b, session = pair
    admin = UserFactory(is_staff=True)
    cast(a, 1)
    cast(b, 1)
    expire(session)
    services.close_expired_sessions()
    session.refresh_from_db()
    assert session.status == "tied"
    with pytest.raises(ServiceError) as refused:
        services.session_extend(session_id=session.pk, admin=admin, hours=24, reason="  ")
    assert refused.value.code == "reason_required"
    for hours in (0, 73):
        with pytest.raises(ServiceError):
            services.session_extend(session_id=session.pk, admin=admin, hours=hours, reason="more time")
    with pytest.raises(ServiceError):
        services.session_extend(session_id=session.pk, admin=UserFactory(), hours=24, reason="more time")
    before = timezone.now()
    session = services.session_extend(session_id=session.pk, admin=admin, hours=24, reason="No clear winner")
    assert session.status == "active" and session.ends_at >= before + timedelta(hours=24)
    cast(a, 1)  # voting is open again
    assert CharacterSubmission.objects.get(pk=a.pk).vote_count == 2


def test_admin_lowers_the_win_threshold_and_a_leader_over_it_wins(
    story, frames, settings, winner_events, django_capture_on_commit_callbacks
):
    settings.VOTING_AUTO_START, settings.VOTING_QUORUM = False, 10
    a, b, c = (submit(story, frames, name) for name in "ABC")
    session = services.session_start(story=story, character_slot="protagonist")
    admin = UserFactory(is_staff=True)
    cast(a, 4)
    cast(b, 3)
    cast(c, 3)
    session.refresh_from_db()
    assert session.status == "active"  # 4 of 10: no majority, a deadlock
    with pytest.raises(ServiceError) as refused:
        services.session_lower_threshold(session_id=session.pk, admin=admin, percent=50, reason="deadlock")
    assert refused.value.code == "invalid_threshold"  # lower only
    with pytest.raises(ServiceError):
        services.session_lower_threshold(session_id=session.pk, admin=admin, percent=40, reason="")
    session = services.session_lower_threshold(session_id=session.pk, admin=admin, percent=40, reason="deadlock")
    assert (session.status, session.win_threshold_percent) == ("active", 40)  # 40 %: floor(10 x 0.4) + 1 = 5
    with django_capture_on_commit_callbacks(execute=True):
        session = services.session_lower_threshold(session_id=session.pk, admin=admin, percent=30, reason="deadlock")
    assert (session.status, session.winner_id, session.decided_by) == ("complete", a.pk, "majority")  # 4 >= 4
    assert "30 %" in session.decision_reason
    assert [e["submission_id"] for e in winner_events] == [a.pk]


def test_a_vote_reaching_a_lowered_threshold_wins_at_once(story, frames, settings):
    settings.VOTING_AUTO_START, settings.VOTING_QUORUM = False, 10
    a, b, c = (submit(story, frames, name) for name in "ABC")
    session = services.session_start(story=story, character_slot="protagonist")
    for submission in (a, b, c):
        cast(submission, 3)
    services.session_lower_threshold(
        session_id=session.pk, admin=UserFactory(is_staff=True), percent=30, reason="three-way deadlock"
    )
    session.refresh_from_db()
    assert session.status == "active"  # 9 votes: under the quorum
    cast(a, 1)  # 10 votes, 4 >= floor(10 x 0.3) + 1
    session.refresh_from_db()
    assert (session.status, session.winner_id) == ("complete", a.pk)
