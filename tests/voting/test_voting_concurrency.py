"""Votes racing for real on PostgreSQL: many threads, each with its own database connection."""

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from tests.support.concurrency import race
from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory, UserFactory
from voting import services, tallies
from voting.models import CharacterSubmission, Vote, VotingSession

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="real races need PostgreSQL (make test runs it)",
    ),
]


@pytest.fixture
def session(settings):
    settings.VOTING_QUORUM = 10_000  # keep the session open while the race runs
    story = StoryFactory()
    frame = CandidateFrameFactory(clip=ClipFactory(story=story))
    for name in "AB":
        services.submission_create(
            story=story, submitter=UserFactory(), frame_ids=[frame.pk], style_description=name, character_name=name
        )
    return VotingSession.objects.get()


def test_one_voter_racing_gets_exactly_one_vote(session):
    voter = UserFactory()
    subs = list(session.submissions.all())
    accepted, refused = race(
        lambda sub_id: services.vote_cast(submission_id=sub_id, voter=voter), [(subs[i % 2].pk,) for i in range(16)]
    )
    assert len(accepted) == 1
    assert len(refused) == 15 and all(e.code == "already_voted" for e in refused)
    assert Vote.objects.filter(session=session, voter=voter).count() == 1
    assert sum(CharacterSubmission.objects.filter(voting_sessions=session).values_list("vote_count", flat=True)) == 1


def test_many_voters_counts_equal_the_votes_table(session):
    voters = [UserFactory() for _ in range(40)]
    subs = list(session.submissions.order_by("pk"))
    accepted, refused = race(
        lambda user, sub_id: services.vote_cast(submission_id=sub_id, voter=user),
        [(v, subs[i % 3 == 0].pk) for i, v in enumerate(voters)],
    )
    assert (len(accepted), refused) == (40, [])
    for sub in subs:
        sub.refresh_from_db()
        assert sub.vote_count == Vote.objects.filter(submission=sub).count()
    counts = tallies.current_counts(session.pk, [s.pk for s in subs])
    assert counts == {s.pk: s.vote_count for s in subs}
    # Every client was told a count; the highest each submission reported equals its final count.
    for sub in subs:
        told = [r.new_vote_count for r in accepted if r.submission_id == sub.pk]
        assert sorted(told) == list(range(1, sub.vote_count + 1))


def test_votes_racing_the_close_never_land_after_it(session):
    """Votes and the close race: every accepted vote is counted in the decision, none lands after it."""
    subs = list(session.submissions.order_by("pk"))
    voters = [UserFactory() for _ in range(30)]

    def vote_or_close(kind, user):
        if kind == "close":  # time runs out now, and the beat task closes the session
            VotingSession.objects.filter(pk=session.pk).update(ends_at=timezone.now())
            return services.session_close(session_id=session.pk)
        return services.vote_cast(submission_id=subs[0].pk, voter=user)

    jobs = [("vote", v) for v in voters[:15]] + [("close", None)] + [("vote", v) for v in voters[15:]]
    accepted, refused = race(vote_or_close, jobs)
    session.refresh_from_db()
    votes = Vote.objects.filter(session=session)
    assert session.status == "complete"
    if votes.exists():
        assert session.winner_id == subs[0].pk
    else:  # the close won every race
        assert (session.winner_id, session.decided_by) == (None, "no_votes")
    assert all(v.created_at <= session.ended_at for v in votes)
    vote_results = [r for r in accepted if not isinstance(r, VotingSession)]
    assert votes.count() == len(vote_results)
    assert all(e.code == "session_closed" for e in refused)
    subs[0].refresh_from_db()
    assert subs[0].vote_count == votes.count()


def test_redis_flushed_mid_session_rebuilds_tallies(session):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (make test runs it)")
    from django.core.cache import cache

    subs = list(session.submissions.order_by("pk"))
    for i in range(5):
        services.vote_cast(submission_id=subs[i % 2].pk, voter=UserFactory())
    assert tallies.current_counts(session.pk, [s.pk for s in subs]) == {subs[0].pk: 3, subs[1].pk: 2}
    cache.clear()  # Redis loses its data
    services.vote_cast(submission_id=subs[1].pk, voter=UserFactory())
    assert tallies.current_counts(session.pk, [s.pk for s in subs]) == {subs[0].pk: 3, subs[1].pk: 3}
    cache.clear()
    assert tallies.current_counts(session.pk, [s.pk for s in subs]) == {subs[0].pk: 3, subs[1].pk: 3}
    connection.close()


def test_starts_racing_for_one_character_group_open_one_vote(settings):
    """Admins (or auto-starts) opening the vote of one group at once: the database lets exactly one in."""
    from characters.models import CharacterGroup

    settings.VOTING_AUTO_START = False
    story = StoryFactory()
    groups = [CharacterGroup.objects.create(story=story, number=n, label=f"Character {n}") for n in (1, 2)]
    for group in groups:
        frame = CandidateFrameFactory(
            clip=ClipFactory(story=story),
            detections=[{"box": {"x": 0, "y": 0, "width": 9, "height": 9}, "pose": "frontal", "group_id": group.pk}],
        )
        for name in "AB":
            services.submission_create(
                story=story, submitter=UserFactory(), frame_ids=[frame.pk], style_description=name, group_id=group.pk
            )
    accepted, refused = race(
        lambda group_id: services.session_start(story=story, group_id=group_id),
        [(groups[i % 2].pk,) for i in range(12)],
    )
    assert sorted(s.group_id for s in accepted) == [g.pk for g in groups]
    assert len(refused) == 10 and all(e.code == "session_exists" for e in refused)
    for group in groups:
        assert VotingSession.objects.filter(group=group, status="active").count() == 1
