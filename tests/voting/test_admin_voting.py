"""The voting admin: start, end, cancel, runoff and override go through the services and are logged."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from tests.support.factories import (
    CandidateFrameFactory,
    CharacterGroupFactory,
    CharacterSubmissionFactory,
    ClipFactory,
    StoryFactory,
    UserFactory,
)
from voting import services
from voting.models import VotingSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def story_with_submissions(settings):
    settings.VOTING_AUTO_START = False
    story = StoryFactory(title="Orbit")
    frame = CandidateFrameFactory(clip=ClipFactory(story=story))
    subs = [
        services.submission_create(
            story=story, submitter=UserFactory(), frame_ids=[frame.pk], style_description=n, character_name=n
        )
        for n in ("Ada", "Bo")
    ]
    return story, subs


def test_start_vote_page_applies_the_rules(admin_client, story_with_submissions):
    story, subs = story_with_submissions
    url = reverse("admin:voting_votingsession_start")
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"story": story.pk, "character_slot": "protagonist", "duration_hours": 48})
    session = VotingSession.objects.get()
    assert response.status_code == 302 and response.url.endswith(f"/{session.pk}/change/")
    assert (session.ends_at - session.starts_at).total_seconds() == 48 * 3600
    assert LogEntry.objects.filter(object_id=str(session.pk)).exists()
    again = admin_client.post(url, {"story": story.pk, "character_slot": "protagonist"})
    assert again.status_code == 200 and "already open" in again.content.decode()
    assert VotingSession.objects.count() == 1


def test_session_page_shows_tallies_and_override(admin_client, story_with_submissions):
    story, subs = story_with_submissions
    session = services.session_start(story=story)
    services.vote_cast(submission_id=subs[1].pk, voter=UserFactory())
    page = admin_client.get(reverse("admin:voting_votingsession_change", args=[session.pk])).content.decode()
    assert "Total: 1" in page and "Override result" in page
    url = reverse("admin:voting_votingsession_override", args=[session.pk])
    missing_reason = admin_client.post(url, {"submission": subs[0].pk, "reason": ""})
    assert missing_reason.status_code == 200
    admin_client.post(url, {"submission": subs[0].pk, "reason": "Matches the pilot"})
    session.refresh_from_db()
    assert (session.winner_id, session.decided_by) == (subs[0].pk, "admin")
    assert session.decision_reason == "Matches the pilot"
    assert LogEntry.objects.filter(object_id=str(session.pk), change_message__contains="Matches the pilot").exists()


def test_the_override_form_shows_each_designs_votes_and_first_frame(admin_client, story_with_submissions):
    story, subs = story_with_submissions
    session = services.session_start(story=story)
    for _ in range(2):
        services.vote_cast(submission_id=subs[1].pk, voter=UserFactory())
    page = admin_client.get(reverse("admin:voting_votingsession_override", args=[session.pk])).content.decode()
    thumbnail = subs[0].frame_links.get().frame.thumbnail.url
    choices = page[page.index('data-role="override-choices"') : page.index("</ul>", page.index("override-choices"))]
    # Most votes first: Bo with both votes, then Ada with none; each with its first frame.
    assert choices.index(f"#{subs[1].pk} Bo") < choices.index(f"#{subs[0].pk} Ada")
    assert re.findall(r'data-role="votes">([^<]+)<', choices) == ["2 votes (100%)", "0 votes (0%)"]
    assert choices.count(f'<img src="{thumbnail}"') == 2
    assert choices.count('type="radio" name="submission"') == 2 and "2 votes cast so far" in page
    # A refused post keeps the admin's choice.
    again = admin_client.post(
        reverse("admin:voting_votingsession_override", args=[session.pk]), {"submission": subs[0].pk, "reason": ""}
    ).content.decode()
    assert f'value="{subs[0].pk}" id="id_submission_{subs[0].pk}" required checked' in again


def test_end_now_and_cancel_actions(admin_client, story_with_submissions):
    story, subs = story_with_submissions
    session = services.session_start(story=story)
    services.vote_cast(submission_id=subs[0].pk, voter=UserFactory())
    changelist = reverse("admin:voting_votingsession_changelist")
    admin_client.post(changelist, {"action": "end_now", "_selected_action": [session.pk]})
    session.refresh_from_db()
    assert (session.status, session.winner_id, session.decided_by) == ("complete", subs[0].pk, "expiry")
    response = admin_client.post(
        changelist, {"action": "cancel_sessions", "_selected_action": [session.pk]}, follow=True
    )
    assert "already ended" in response.content.decode()
    session.refresh_from_db()
    assert session.status == "complete"


def test_votes_are_read_only_and_non_staff_is_refused(admin_client, client, story_with_submissions):
    story, subs = story_with_submissions
    services.session_start(story=story)
    services.vote_cast(submission_id=subs[0].pk, voter=UserFactory())
    assert admin_client.get(reverse("admin:voting_vote_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:voting_vote_add")).status_code == 403
    client.logout()
    client.force_login(UserFactory(username="someone"))
    response = client.get(reverse("admin:voting_votingsession_start"))
    assert response.status_code == 302 and "/login/" in response.url


def test_deadlock_page_extends_and_lowers_the_threshold_with_a_logged_reason(admin_client, story_with_submissions):
    story, subs = story_with_submissions
    session = services.session_start(story=story)
    change = admin_client.get(reverse("admin:voting_votingsession_change", args=[session.pk])).content.decode()
    url = reverse("admin:voting_votingsession_deadlock", args=[session.pk])
    assert url in change
    assert admin_client.get(url).status_code == 200
    nothing = admin_client.post(url, {"reason": "stuck"})
    assert nothing.status_code == 200 and "Extend the vote, lower its threshold, or both." in nothing.content.decode()
    no_reason = admin_client.post(url, {"extend_hours": 24, "reason": ""})
    assert no_reason.status_code == 200
    ends_at = session.ends_at
    response = admin_client.post(url, {"extend_hours": 24, "win_threshold_percent": 40, "reason": "No clear winner"})
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.win_threshold_percent == 40 and (session.ends_at - ends_at).total_seconds() >= 24 * 3600 - 1
    entry = LogEntry.objects.get(object_id=str(session.pk))
    assert "extended by 24 h" in entry.change_message and "lowered to 40 %" in entry.change_message
    assert "No clear winner" in entry.change_message
    refused = admin_client.post(url, {"win_threshold_percent": 45, "reason": "again"})
    assert refused.status_code == 200 and "between 1 and 39" in refused.content.decode()


# --- Submissions: read-only, changed only through the services ------------------------------------


def test_a_submission_change_form_edits_nothing(admin_client, story_with_submissions):
    _, subs = story_with_submissions
    url = reverse("admin:voting_charactersubmission_change", args=[subs[0].pk])
    page = admin_client.get(url).content.decode()
    assert "Ada" in page  # shown...
    assert not re.search(
        r'<(input|textarea|select)[^>]+name="(character_name|style_description|status|vote_count)"', page
    )
    assert 'name="_save"' not in page
    # ...and a hand-made POST changes nothing either.
    refused = admin_client.post(url, {"character_name": "Mallory", "status": "won", "vote_count": 99})
    assert refused.status_code == 403
    subs[0].refresh_from_db()
    assert (subs[0].character_name, subs[0].status, subs[0].vote_count) == ("Ada", "active", 0)
    assert admin_client.get(reverse("admin:voting_charactersubmission_add")).status_code == 403
    delete = reverse("admin:voting_charactersubmission_delete", args=[subs[0].pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403


def test_submission_actions_go_through_the_voting_services(admin_client, story_with_submissions):
    story, subs = story_with_submissions
    changelist = reverse("admin:voting_charactersubmission_changelist")
    services.session_start(story=story)

    def act(action, submission):
        response = admin_client.post(changelist, {"action": action, "_selected_action": [submission.pk]}, follow=True)
        return [str(m) for m in response.context["messages"]]

    # The service's rule (no withdrawing from an open vote) holds in the admin, in the service's words.
    [refused] = act("withdraw_submissions", subs[0])
    assert "in an open vote and cannot be withdrawn" in refused
    services.session_cancel(session_id=VotingSession.objects.get().pk, admin=UserFactory(is_staff=True))
    assert act("withdraw_submissions", subs[0]) == [f"Submission {subs[0].pk}: withdrawn."]
    subs[0].refresh_from_db()
    assert subs[0].status == "withdrawn"
    assert LogEntry.objects.filter(object_id=str(subs[0].pk), change_message="withdrawn").exists()
    # Locking a submission that neither won nor is in an open vote is refused by the lock service.
    [not_lockable] = act("lock_submissions", subs[1])
    assert "only a winner or a submission in an open vote can be locked" in not_lockable


def test_submissions_are_filtered_by_character_not_by_the_stored_slot(admin_client):
    story = StoryFactory()
    robot, cat = CharacterGroupFactory(story=story, label="Main Robot"), CharacterGroupFactory(story=story, label="Cat")
    CharacterSubmissionFactory(story=story, character_group=robot, character_name="Bolt")
    CharacterSubmissionFactory(story=story, character_group=cat, character_name="Whiskers")
    changelist = reverse("admin:voting_charactersubmission_changelist")
    page = admin_client.get(changelist).content.decode()
    assert "Main Robot" in page and "Cat" in page  # the filter offers the story's characters
    only_robot = admin_client.get(changelist, {"character_group__id__exact": robot.pk}).content.decode()
    assert "Bolt" in only_robot and "Whiskers" not in only_robot
