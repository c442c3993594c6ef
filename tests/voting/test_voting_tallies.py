"""Live tallies in Redis against the votes table: late writes, runoffs, a lost or unreachable Redis.

Votes here commit as they do in production (no test transaction around them), so each vote's
tally write and majority check run right after its commit, on the counts Redis hands back.
"""

import pytest
from django.conf import settings
from django.db import connection

from common.exceptions import ServiceError
from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory, UserFactory
from tests.voting.test_api_voting import client_for, vote_url
from tests.voting.test_voting_rules import cast, expire
from voting import services, tallies
from voting.models import CharacterSubmission, Vote, VotingSession

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (make test runs it)"),
]


@pytest.fixture
def pair(settings):
    settings.VOTING_TIE_RULE = "runoff"
    story = StoryFactory()
    frame = CandidateFrameFactory(clip=ClipFactory(story=story))
    subs = [
        services.submission_create(
            story=story, submitter=UserFactory(), frame_ids=[frame.pk], style_description=name, character_name=name
        )
        for name in "AB"
    ]
    yield subs[0], subs[1], VotingSession.objects.get()
    connection.close()


def table_counts(session) -> dict[int, int]:
    return tallies.counts_from_votes(session.pk, list(session.submissions.values_list("pk", flat=True)))


def test_a_late_write_never_takes_a_count_back(pair):
    a, b, session = pair
    cast(a, 3)
    assert tallies.stored_counts(session.pk) == {a.pk: 3, b.pk: 0}
    # A request that committed vote 2 reaches Redis only after vote 3's request did.
    assert tallies.record_vote(session.pk, a.pk, 2) == {a.pk: 3, b.pk: 0}
    assert tallies.current_counts(session.pk, [a.pk, b.pk]) == table_counts(session) == {a.pk: 3, b.pk: 0}


def test_a_runoff_counts_only_its_own_votes(pair, settings):
    a, b, session = pair
    settings.VOTING_QUORUM = 3
    cast(a, 1)
    cast(b, 1)
    expire(session)
    services.session_close(session_id=session.pk)
    runoff = VotingSession.objects.get(runoff_of=session)
    assert tallies.current_counts(runoff.pk, [a.pk, b.pk]) == {a.pk: 0, b.pk: 0}
    result = services.vote_cast(submission_id=a.pk, voter=UserFactory())
    assert result.new_vote_count == 2  # the submission's count includes its first round
    assert tallies.stored_counts(runoff.pk) == {a.pk: 1, b.pk: 0}
    cast(b, 1)
    runoff.refresh_from_db()
    assert runoff.status == "active"  # 2 votes in the runoff: below the quorum of 3, whatever came before
    cast(a, 1)
    runoff.refresh_from_db()
    # 3 runoff votes, 2 of them for A: a majority over quorum, declared by the vote that made it.
    assert (runoff.status, runoff.winner_id, runoff.decided_by) == ("complete", a.pk, "majority")
    assert tallies.current_counts(runoff.pk, [a.pk, b.pk]) == table_counts(runoff) == {a.pk: 2, b.pk: 1}


def test_majority_is_declared_from_the_live_tallies(pair, settings):
    a, b, session = pair
    settings.VOTING_QUORUM = 4
    cast(a, 2)
    cast(b, 1)
    session.refresh_from_db()
    assert session.status == "active"
    cast(a, 1)
    session.refresh_from_db()
    assert (session.status, session.winner_id) == ("complete", a.pk)
    with pytest.raises(ServiceError, match="Voting for this session closed at"):
        services.vote_cast(submission_id=b.pk, voter=UserFactory())
    assert Vote.objects.filter(session=session).count() == 4


def test_lost_tallies_are_rebuilt_by_the_next_vote(pair):
    a, b, session = pair
    cast(a, 2)
    from django.core.cache import cache

    cache.clear()  # Redis restarted empty
    assert tallies.stored_counts(session.pk) is None
    result = services.vote_cast(submission_id=b.pk, voter=UserFactory())
    assert result.new_vote_count == 1
    assert tallies.stored_counts(session.pk) == {a.pk: 2, b.pk: 1}


def test_votes_go_on_when_redis_is_unreachable(pair, settings):
    a, b, session = pair
    cast(a, 1)
    # The cache (and so tallies and throttle counters) pointed at a port where nothing listens.
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"}}
    assert tallies.live_tallies_enabled()
    assert tallies.record_vote(session.pk, a.pk, 1) is None  # the caller counts from the database
    response = client_for(UserFactory()).post(vote_url(b.pk))
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True, "new_vote_count": 1}
    assert tallies.current_counts(session.pk, [a.pk, b.pk]) == {a.pk: 1, b.pk: 1}
    assert CharacterSubmission.objects.get(pk=b.pk).vote_count == 1
