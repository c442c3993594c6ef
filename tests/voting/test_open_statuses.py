"""VotingSession.OPEN_STATUSES is the one list of open votes: the selectors, the withdraw rule, the
one-open-session constraint, the story page's panel and the admin's buttons all follow it."""

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory, UserFactory, VotingSessionFactory
from voting import selectors, services
from voting.models import VotingSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def session_in(settings):
    """A story whose one vote (two designs) is moved to the status asked for."""
    settings.VOTING_AUTO_START = False

    def make(status):
        story = StoryFactory()
        frame = CandidateFrameFactory(clip=ClipFactory(story=story))
        designs = [
            services.submission_create(
                story=story, submitter=UserFactory(), frame_ids=[frame.pk], style_description=name, character_name=name
            )
            for name in ("Ada", "Bo")
        ]
        session = services.session_start(story=story)
        VotingSession.objects.filter(pk=session.pk).update(status=status)
        session.refresh_from_db()
        return session, designs

    return make


@pytest.mark.parametrize("status", VotingSession.Status.values)
def test_every_reader_of_open_votes_agrees_with_the_one_list(status, session_in, client):
    session, (ada, _) = session_in(status)
    is_open = status in VotingSession.OPEN_STATUSES

    assert session.is_open is is_open
    assert list(selectors.story_open_sessions(session.story)) == ([session] if is_open else [])
    assert selectors.open_session_ids([ada.pk]) == ({ada.pk: session.pk} if is_open else {})

    # The withdraw rule (voting.services) refuses exactly while the vote is open.
    if is_open:
        with pytest.raises(services.VotingError, match="open vote"):
            services.submission_withdraw(submission=ada, user=ada.submitter)
    else:
        assert services.submission_withdraw(submission=ada, user=ada.submitter).status == "withdrawn"

    # The database's one-open-session constraint is written with literal values: it must match the list.
    def second_open_session():
        return VotingSessionFactory(story=session.story, character_slot=session.character_slot)

    if is_open:
        with pytest.raises(IntegrityError), transaction.atomic():
            second_open_session()
    else:
        assert second_open_session().is_open

    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:voting_votingsession_change", args=[session.pk])).content.decode()
    assert ("Override result" in page) is is_open
