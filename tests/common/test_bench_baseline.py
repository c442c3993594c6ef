"""The vote bench's baseline endpoint: routed only by the bench's settings, authenticated, one indexed read."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory, UserFactory
from voting.models import Vote, VotingSession

pytestmark = pytest.mark.django_db

PING = "/api/v1/bench/ping"


def test_the_app_does_not_route_the_ping():
    assert APIClient().get(PING).status_code == 404


def test_under_the_bench_urls_the_ping_answers_the_user_and_their_vote_count(settings):
    from voting import services

    settings.ROOT_URLCONF = "bench.baseline"
    story = StoryFactory()
    frames = [CandidateFrameFactory(clip=ClipFactory(story=story)) for _ in range(2)]
    subs = [
        services.submission_create(story=story, submitter=UserFactory(), frame_ids=[f.pk], style_description="d")
        for f in frames
    ]
    session = VotingSession.objects.get(story=story)  # two submissions open it
    voter = UserFactory()
    api = APIClient()
    assert api.get(PING, {"session": session.pk}).status_code == 401  # the vote's authentication
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=voter).key}")
    assert api.get(PING, {"session": session.pk}).json() == {"user_id": voter.pk, "votes": 0}
    Vote.objects.create(session=session, submission=subs[0], voter=voter)
    assert api.get(PING, {"session": session.pk}).json() == {"user_id": voter.pk, "votes": 1}
