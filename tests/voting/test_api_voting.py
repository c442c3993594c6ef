"""The voting API over HTTP: every endpoint's success and failure bodies, with real Bearer tokens."""

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from common.throttling import UserRateThrottle
from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory, UserFactory
from voting import services
from voting.models import CharacterSubmission, Vote, VotingSession

pytestmark = pytest.mark.django_db


def client_for(user=None) -> APIClient:
    """A client that signs in as `user` the way API consumers do: `Authorization: Bearer <token>`."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return client


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_error(response, status: int, code: str, *, details=None, message_has: str = ""):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert message_has in body["error"]["message"]
    if details is not None:
        assert body["error"]["details"] == details
    return body["error"]


@pytest.fixture
def story():
    return StoryFactory()


@pytest.fixture
def frames(story):
    clip = ClipFactory(story=story)
    return [CandidateFrameFactory(clip=clip) for _ in range(4)]


@pytest.fixture
def contributor():
    return UserFactory(username="ada")


@pytest.fixture
def staff():
    return UserFactory(username="boss", is_staff=True)


def submissions_url(story_id: int) -> str:
    return f"/api/v1/stories/{story_id}/characters/submissions"


def vote_url(submission_id: int) -> str:
    return f"/api/v1/characters/submissions/{submission_id}/vote"


def session_url(session_id: int, action: str = "") -> str:
    return f"/api/v1/voting-sessions/{session_id}" + (f"/{action}" if action else "")


def submit(story, frames, name, user=None, slot="protagonist"):
    return services.submission_create(
        story=story,
        submitter=user or UserFactory(),
        frame_ids=[f.pk for f in frames[:2]],
        style_description=f"{name}: calm astronaut in an orange suit",
        character_name=name,
        character_slot=slot,
    )


@pytest.fixture
def pair(story, frames, django_capture_on_commit_callbacks):
    """Two submissions; the second opens a session (auto-start is on by default).

    The session's live counters are set up after its commit, which a test's transaction never
    reaches, so those hooks run here: with Redis, counters left by an earlier run under the same
    session id would otherwise be read.
    """
    with django_capture_on_commit_callbacks(execute=True):
        a = submit(story, frames, "Ada")
        b = submit(story, frames, "Bo")
    return a, b, VotingSession.objects.get()


# --- POST /stories/{id}/characters/submissions ----------------------------------------------


def test_create_submission_answers_the_seed_body(story, frames, contributor):
    payload = {
        "frame_ids": [frames[2].pk, frames[0].pk],
        "style_description": "Battle-worn veteran knight",
        "character_slot": "protagonist",
        "character_name": "Sir Aldric",
    }
    before = timezone.now()
    response = client_for(contributor).post(submissions_url(story.pk), payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    submission = CharacterSubmission.objects.get()
    assert set(body) == {
        "id",
        "story_id",
        "frame_ids",
        "style_description",
        "vote_count",
        "status",
        "created_at",
        "character_slot",
        "character_name",
        "render_style",
        "features_to_keep",
        "voting_session_id",
        "group_id",
        "mixed_characters_reason",
        "slot_label",
    }
    assert body["id"] == submission.pk
    assert body["story_id"] == story.pk
    assert body["frame_ids"] == [frames[2].pk, frames[0].pk]  # the order the contributor picked
    assert body["style_description"] == "Battle-worn veteran knight"
    assert body["vote_count"] == 0
    assert body["status"] == "active"
    assert before <= parse_time(body["created_at"]) <= timezone.now()
    assert body["character_slot"] == "protagonist"
    assert body["character_name"] == "Sir Aldric"
    assert body["voting_session_id"] is None  # one submission does not open a vote
    assert submission.submitter == contributor


def test_second_submission_reports_the_session_it_opened(story, frames, contributor):
    submit(story, frames, "Bo")
    response = client_for(contributor).post(
        submissions_url(story.pk), {"frame_ids": [frames[1].pk], "style_description": "Silver hair"}, format="json"
    )
    assert response.status_code == 201
    session = VotingSession.objects.get()
    assert response.json()["voting_session_id"] == session.pk
    assert response.json()["character_slot"] == "protagonist"  # the default slot
    assert response.json()["character_name"] == ""


def test_slot_is_normalised_to_lower_case(story, frames, contributor):
    response = client_for(contributor).post(
        submissions_url(story.pk),
        {"frame_ids": [frames[0].pk], "style_description": "x", "character_slot": "Villain"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["character_slot"] == "villain"


def test_create_submission_needs_sign_in(story, frames):
    response = client_for().post(
        submissions_url(story.pk), {"frame_ids": [frames[0].pk], "style_description": "x"}, format="json"
    )
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"
    assert not CharacterSubmission.objects.exists()


def test_create_submission_for_unknown_story_is_404(contributor, frames):
    response = client_for(contributor).post(
        submissions_url(999_999), {"frame_ids": [frames[0].pk], "style_description": "x"}, format="json"
    )
    assert_error(response, 404, "not_found", message_has="999999")


def test_frames_of_another_story_are_refused(story, frames, contributor):
    foreign = CandidateFrameFactory()  # a clip of another story
    response = client_for(contributor).post(
        submissions_url(story.pk), {"frame_ids": [frames[0].pk, foreign.pk], "style_description": "x"}, format="json"
    )
    error = assert_error(response, 400, "foreign_frames", details={"frame_ids": [foreign.pk]})
    assert str(foreign.pk) in error["message"]
    assert not CharacterSubmission.objects.exists()


@pytest.mark.parametrize(
    ("payload", "code", "message_has"),
    [
        ({"frame_ids": [], "style_description": "x"}, "frame_count", "between 1 and 10"),
        ({"style_description": "x"}, "invalid", "frame_ids"),
        ({"frame_ids": "1,2", "style_description": "x"}, "invalid", "frame_ids"),
        ({"frame_ids": ["a"], "style_description": "x"}, "invalid", "frame_ids"),
        ({"frame_ids": "FRAMES", "style_description": ""}, "style_required", "Describe"),
        ({"frame_ids": "FRAMES"}, "invalid", "style_description"),
        ({"frame_ids": "FRAMES", "style_description": "   "}, "style_required", "Describe"),
        ({"frame_ids": "FRAMES", "style_description": "x" * 501}, "style_too_long", "501"),
        ({"frame_ids": "FRAMES", "style_description": "x", "character_name": "n" * 101}, "name_too_long", "100"),
        ({"frame_ids": "FRAMES", "style_description": "x", "character_slot": "main hero"}, "invalid", "character_slot"),
    ],
)
def test_bad_submissions_get_a_clear_400(story, frames, contributor, payload, code, message_has):
    if payload.get("frame_ids") == "FRAMES":
        payload = {**payload, "frame_ids": [frames[0].pk]}
    response = client_for(contributor).post(submissions_url(story.pk), payload, format="json")
    assert_error(response, 400, code, message_has=message_has)
    assert not CharacterSubmission.objects.exists()


def test_several_problems_are_all_listed_in_the_details(story, contributor):
    response = client_for(contributor).post(
        submissions_url(story.pk), {"frame_ids": [], "style_description": ""}, format="json"
    )
    error = assert_error(response, 400, "style_required", message_has="Describe")  # the first, as before
    assert [e["code"] for e in error["details"]["errors"]] == ["style_required", "frame_count"]
    assert "you picked 0" in error["details"]["errors"][1]["message"]
    assert not CharacterSubmission.objects.exists()


def test_eleven_frames_are_refused(story, contributor):
    clip = ClipFactory(story=story)
    ids = [CandidateFrameFactory(clip=clip).pk for _ in range(11)]
    response = client_for(contributor).post(
        submissions_url(story.pk), {"frame_ids": ids, "style_description": "x"}, format="json"
    )
    assert_error(response, 400, "frame_count", message_has="you picked 11")


# --- GET /stories/{id}/characters/submissions -----------------------------------------------


def test_list_submissions_is_public_and_names_the_open_session(story, frames, pair):
    a, b, session = pair
    lone = submit(story, frames, "Cy", slot="villain")
    response = client_for().get(submissions_url(story.pk))
    assert response.status_code == 200
    rows = {row["id"]: row for row in response.json()}
    assert set(rows) == {a.pk, b.pk, lone.pk}
    assert rows[a.pk] == {
        "id": a.pk,
        "story_id": story.pk,
        "frame_ids": [frames[0].pk, frames[1].pk],
        "style_description": "Ada: calm astronaut in an orange suit",
        "vote_count": 0,
        "status": "active",
        "created_at": rows[a.pk]["created_at"],
        "character_slot": "protagonist",
        "character_name": "Ada",
        "render_style": "",
        "features_to_keep": [],
        "voting_session_id": session.pk,
        "group_id": None,
        "mixed_characters_reason": "",
        "slot_label": "protagonist",
    }
    assert parse_time(rows[a.pk]["created_at"]) == a.created_at
    assert rows[b.pk]["voting_session_id"] == session.pk
    assert rows[lone.pk]["voting_session_id"] is None
    assert rows[lone.pk]["character_slot"] == "villain"


def test_list_submissions_after_the_vote_ends_has_no_session(story, frames, pair, staff):
    a, b, session = pair
    services.session_cancel(session_id=session.pk, admin=staff)
    rows = client_for().get(submissions_url(story.pk)).json()
    assert [row["voting_session_id"] for row in rows] == [None, None]


def test_list_submissions_of_unknown_story_is_404():
    assert_error(client_for().get(submissions_url(999_999)), 404, "not_found")


# --- POST /characters/submissions/{id}/vote -------------------------------------------------


def test_vote_answers_success_and_the_new_count(pair):
    a, b, session = pair
    first, second = UserFactory(), UserFactory()
    response = client_for(first).post(vote_url(a.pk))
    assert response.status_code == 200
    assert response.json() == {"success": True, "new_vote_count": 1}
    assert client_for(second).post(vote_url(a.pk)).json() == {"success": True, "new_vote_count": 2}
    assert client_for(UserFactory()).post(vote_url(b.pk)).json() == {"success": True, "new_vote_count": 1}
    assert Vote.objects.filter(session=session, submission=a).count() == 2
    a.refresh_from_db()
    assert a.vote_count == 2


def test_submitter_may_vote_for_their_own_submission(story, frames, contributor):
    own = submit(story, frames, "Ada", user=contributor)
    submit(story, frames, "Bo")
    assert client_for(contributor).post(vote_url(own.pk)).json() == {"success": True, "new_vote_count": 1}


def test_vote_with_a_session_login_works(pair):
    a, _, _ = pair
    client = APIClient()
    client.force_login(UserFactory())
    assert client.post(vote_url(a.pk)).json() == {"success": True, "new_vote_count": 1}


def test_double_vote_is_409_and_changes_nothing(pair):
    a, b, session = pair
    voter = UserFactory()
    client = client_for(voter)
    assert client.post(vote_url(a.pk)).status_code == 200
    assert_error(client.post(vote_url(a.pk)), 409, "already_voted", message_has="already voted")
    assert_error(client.post(vote_url(b.pk)), 409, "already_voted")  # one vote per session, not per submission
    assert list(Vote.objects.filter(session=session).values_list("voter", "submission")) == [(voter.pk, a.pk)]
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.vote_count, b.vote_count) == (1, 0)


def test_vote_after_the_window_is_409(pair):
    a, _, session = pair
    VotingSession.objects.filter(pk=session.pk).update(
        starts_at=timezone.now() - timedelta(hours=25), ends_at=timezone.now() - timedelta(seconds=1)
    )
    assert_error(client_for(UserFactory()).post(vote_url(a.pk)), 409, "session_closed", message_has="closed")
    assert not Vote.objects.exists()


def test_vote_in_an_ended_session_is_409(pair, staff):
    a, b, session = pair
    services.session_override(session_id=session.pk, submission_id=b.pk, admin=staff, reason="Pilot look")
    session.refresh_from_db()
    assert_error(
        client_for(UserFactory()).post(vote_url(a.pk)),
        409,
        "session_closed",
        message_has=f"closed at {session.ended_at:%Y-%m-%d %H:%M} UTC",
    )
    assert not Vote.objects.exists()


def test_vote_for_a_submission_in_no_session_is_409(story, frames):
    lone = submit(story, frames, "Ada")
    assert_error(client_for(UserFactory()).post(vote_url(lone.pk)), 409, "no_open_session")


def test_vote_for_unknown_submission_is_404():
    assert_error(client_for(UserFactory()).post(vote_url(999_999)), 404, "not_found", message_has="999999")


def test_anonymous_vote_is_401(pair):
    a, _, _ = pair
    response = client_for().post(vote_url(a.pk))
    assert_error(response, 401, "not_authenticated")
    assert not Vote.objects.exists()


def test_bad_token_is_401(pair):
    a, _, _ = pair
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert_error(client.post(vote_url(a.pk)), 401, "authentication_failed")


def test_too_new_account_is_403(pair, settings):
    settings.VOTING_MIN_ACCOUNT_AGE_HOURS = 24
    a, _, _ = pair
    assert_error(client_for(UserFactory()).post(vote_url(a.pk)), 403, "account_too_new", message_has="24 hours")


def test_votes_are_throttled_per_user(pair, monkeypatch):
    a, b, _ = pair
    voter = UserFactory()
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "2/min")
    client = client_for(voter)
    assert client.post(vote_url(a.pk)).status_code == 200
    assert client.post(vote_url(b.pk)).status_code == 409
    error = assert_error(client.post(vote_url(b.pk)), 429, "throttled")
    assert error["details"]["retry_after_seconds"] > 0


def test_vote_stays_lean(pair):
    """The hot path: the token, the service's own statements, nothing the API layer adds per request."""
    a, _, _ = pair
    client = client_for(UserFactory())
    with CaptureQueriesContext(connection) as queries:
        assert client.post(vote_url(a.pk)).status_code == 200
    sql = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert sum("authtoken_token" in s for s in sql) == 1
    assert len(sql) <= 10, "\n".join(sql)


def test_vote_answers_json_whatever_the_client_accepts(pair):
    a, _, _ = pair
    response = client_for(UserFactory()).post(vote_url(a.pk), HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"success": True, "new_vote_count": 1}


def test_inactive_users_token_is_refused(pair):
    a, _, _ = pair
    voter = UserFactory()
    client = client_for(voter)
    voter.is_active = False
    voter.save()
    assert_error(client.post(vote_url(a.pk)), 401, "authentication_failed")
    assert not Vote.objects.filter(voter=voter).exists()


# --- GET /voting-sessions/{id} --------------------------------------------------------------


def test_session_status_body(pair, django_capture_on_commit_callbacks):
    a, b, session = pair
    # Live tallies move after commit; the test's transaction never commits, so run those hooks here.
    with django_capture_on_commit_callbacks(execute=True):
        for voter, sub in ((UserFactory(), b), (UserFactory(), b), (UserFactory(), a)):
            client_for(voter).post(vote_url(sub.pk))
    most_left = (session.ends_at - timezone.now()).total_seconds() * 1000
    response = client_for().get(session_url(session.pk))  # anyone may read it
    least_left = (session.ends_at - timezone.now()).total_seconds() * 1000
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "session_id",
        "story_id",
        "character_slot",
        "group_id",
        "slot_label",
        "status",
        "total_votes",
        "submissions",
        "starts_at",
        "ends_at",
        "time_remaining",
        "winner_id",
        "decided_by",
        "decision_reason",
        "runoff_of",
        "win_threshold_percent",
    }
    assert body["session_id"] == session.pk
    assert body["story_id"] == session.story_id
    assert body["character_slot"] == body["slot_label"] == "protagonist"  # designs from before identity
    assert body["group_id"] is None
    assert body["status"] == "active"
    assert body["total_votes"] == 3
    assert body["submissions"] == [  # most votes first
        {
            "id": b.pk,
            "creator": b.submitter.username,
            "style": b.style_description,
            "votes": 2,
            "percentage": 67,
            "character_name": "Bo",
            "frame_ids": b.frame_ids,
        },
        {
            "id": a.pk,
            "creator": a.submitter.username,
            "style": a.style_description,
            "votes": 1,
            "percentage": 33,
            "character_name": "Ada",
            "frame_ids": a.frame_ids,
        },
    ]
    assert parse_time(body["starts_at"]) == session.starts_at
    assert parse_time(body["ends_at"]) == session.ends_at
    assert least_left - 1 <= body["time_remaining"] <= most_left  # milliseconds
    assert body["winner_id"] is None
    assert body["decided_by"] == ""
    assert body["decision_reason"] == ""
    assert body["runoff_of"] is None
    assert body["win_threshold_percent"] == 50


def test_session_status_shows_a_lowered_win_threshold(pair):
    _, _, session = pair
    services.session_lower_threshold(
        session_id=session.pk, admin=UserFactory(is_staff=True), percent=40, reason="No clear winner"
    )
    assert client_for().get(session_url(session.pk)).json()["win_threshold_percent"] == 40


def test_session_status_with_no_votes(pair):
    _, _, session = pair
    body = client_for().get(session_url(session.pk)).json()
    assert body["total_votes"] == 0
    assert [row["percentage"] for row in body["submissions"]] == [0, 0]


def test_unknown_session_is_404():
    assert_error(client_for().get(session_url(999_999)), 404, "not_found", message_has="999999")


# --- POST /stories/{id}/voting-sessions -----------------------------------------------------


@pytest.fixture
def manual_pair(story, frames, settings):
    settings.VOTING_AUTO_START = False
    return submit(story, frames, "Ada"), submit(story, frames, "Bo")


@pytest.mark.django_db(transaction=True)  # commits for real, so the live counters start as they do in production
def test_staff_start_a_session(story, manual_pair, staff):
    a, b = manual_pair
    response = client_for(staff).post(
        f"/api/v1/stories/{story.pk}/voting-sessions",
        {"character_slot": "protagonist", "duration_hours": 48},
        format="json",
    )
    assert response.status_code == 201, response.content
    session = VotingSession.objects.get()
    body = response.json()
    assert body["session_id"] == session.pk
    assert body["status"] == "active"
    assert body["total_votes"] == 0
    assert {row["id"] for row in body["submissions"]} == {a.pk, b.pk}
    assert session.ends_at - session.starts_at == timedelta(hours=48)
    assert 47 * 3600_000 < body["time_remaining"] <= 48 * 3600_000
    assert session.started_by == staff


def test_start_uses_the_default_duration(story, manual_pair, staff, settings):
    settings.VOTING_DURATION_HOURS = 36
    response = client_for(staff).post(
        f"/api/v1/stories/{story.pk}/voting-sessions", {"character_slot": "Protagonist"}, format="json"
    )
    assert response.status_code == 201
    session = VotingSession.objects.get()
    assert session.character_slot == "protagonist"
    assert session.ends_at - session.starts_at == timedelta(hours=36)


def test_start_when_one_is_open_is_409_naming_it(story, frames, pair, staff):
    _, _, open_session = pair
    submit(story, frames, "Cy")
    submit(story, frames, "Di")
    response = client_for(staff).post(
        f"/api/v1/stories/{story.pk}/voting-sessions", {"character_slot": "protagonist"}, format="json"
    )
    assert_error(response, 409, "session_exists", details={"session_id": open_session.pk})
    assert VotingSession.objects.count() == 1


def test_start_needs_two_submissions(story, frames, staff, settings):
    settings.VOTING_AUTO_START = False
    submit(story, frames, "Ada")
    response = client_for(staff).post(
        f"/api/v1/stories/{story.pk}/voting-sessions", {"character_slot": "protagonist"}, format="json"
    )
    assert_error(response, 400, "not_enough_submissions", message_has="at least 2")
    assert not VotingSession.objects.exists()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "invalid"),
        ({"character_slot": "main hero"}, "invalid"),
        ({"character_slot": "protagonist", "duration_hours": 0}, "invalid"),
        ({"character_slot": "protagonist", "duration_hours": 100}, "bad_duration"),
    ],
)
def test_start_with_bad_input_is_400(story, manual_pair, staff, payload, code):
    response = client_for(staff).post(f"/api/v1/stories/{story.pk}/voting-sessions", payload, format="json")
    assert_error(response, 400, code)
    assert not VotingSession.objects.exists()


def test_start_is_for_staff_only(story, manual_pair):
    url = f"/api/v1/stories/{story.pk}/voting-sessions"
    payload = {"character_slot": "protagonist"}
    assert_error(client_for().post(url, payload, format="json"), 401, "not_authenticated")
    assert_error(client_for(UserFactory()).post(url, payload, format="json"), 403, "permission_denied")
    assert not VotingSession.objects.exists()


def test_start_for_unknown_story_is_404(staff):
    response = client_for(staff).post(
        "/api/v1/stories/999999/voting-sessions", {"character_slot": "protagonist"}, format="json"
    )
    assert_error(response, 404, "not_found")


# --- POST /voting-sessions/{id}/override, /cancel, /runoff ----------------------------------


def test_override_names_the_winner_with_the_reason(pair, staff):
    a, b, session = pair
    services.vote_cast(submission_id=a.pk, voter=UserFactory())
    response = client_for(staff).post(
        session_url(session.pk, "override"), {"submission_id": b.pk, "reason": "Matches the pilot"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["session_id"], body["status"], body["winner_id"]) == (session.pk, "complete", b.pk)
    assert (body["decided_by"], body["decision_reason"]) == ("admin", "Matches the pilot")
    assert body["time_remaining"] == 0
    session.refresh_from_db()
    assert session.decided_by_user == staff
    b.refresh_from_db()
    assert b.status == "won"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"reason": "x"}, "invalid"),
        ({"submission_id": "B"}, "invalid"),
        ({"submission_id": "B", "reason": " "}, "reason_required"),
    ],
)
def test_override_with_bad_input_is_400(pair, staff, payload, code):
    _, b, session = pair
    if payload.get("submission_id") == "B":
        payload = {**payload, "submission_id": b.pk}
    assert_error(client_for(staff).post(session_url(session.pk, "override"), payload, format="json"), 400, code)
    session.refresh_from_db()
    assert session.status == "active"


def test_override_with_a_submission_outside_the_session_is_400(story, frames, pair, staff):
    _, _, session = pair
    outsider = submit(story, frames, "Cy", slot="villain")
    response = client_for(staff).post(
        session_url(session.pk, "override"), {"submission_id": outsider.pk, "reason": "x"}, format="json"
    )
    assert_error(response, 400, "not_in_session", message_has=str(outsider.pk))


def test_override_of_an_ended_session_is_409(pair, staff):
    a, b, session = pair
    client = client_for(staff)
    assert client.post(session_url(session.pk, "override"), {"submission_id": a.pk, "reason": "x"}).status_code == 200
    response = client.post(session_url(session.pk, "override"), {"submission_id": b.pk, "reason": "y"}, format="json")
    assert_error(response, 409, "session_closed")
    session.refresh_from_db()
    assert session.winner_id == a.pk


def test_cancel(pair, staff):
    _, _, session = pair
    response = client_for(staff).post(session_url(session.pk, "cancel"), {"reason": "Wrong slot"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["decided_by"], body["decision_reason"]) == ("cancelled", "cancelled", "Wrong slot")
    assert body["winner_id"] is None
    again = client_for(staff).post(session_url(session.pk, "cancel"), {}, format="json")
    assert_error(again, 409, "session_closed")


def test_cancel_without_a_reason_records_a_default(pair, staff):
    _, _, session = pair
    body = client_for(staff).post(session_url(session.pk, "cancel")).json()
    assert (body["status"], body["decision_reason"]) == ("cancelled", "Cancelled by an admin.")


@pytest.mark.django_db(transaction=True)
def test_runoff_opens_a_session_between_the_tied_leaders(story, frames, staff, settings):
    settings.VOTING_AUTO_START = False
    a, b, c = (submit(story, frames, n) for n in ("Ada", "Bo", "Cy"))
    session = services.session_start(story=story)
    for sub in (a, b):
        services.vote_cast(submission_id=sub.pk, voter=UserFactory())
    response = client_for(staff).post(session_url(session.pk, "runoff"))
    assert response.status_code == 201, response.content
    body = response.json()
    runoff = VotingSession.objects.get(runoff_of=session)
    assert (body["session_id"], body["runoff_of"], body["status"]) == (runoff.pk, session.pk, "active")
    assert {row["id"] for row in body["submissions"]} == {a.pk, b.pk}
    assert body["total_votes"] == 0
    original = client_for().get(session_url(session.pk)).json()
    assert (original["status"], original["decided_by"]) == ("complete", "runoff")
    c.refresh_from_db()
    assert c.status == "lost"


def test_runoff_without_a_tie_is_400(pair, staff):
    a, _, session = pair
    services.vote_cast(submission_id=a.pk, voter=UserFactory())
    assert_error(client_for(staff).post(session_url(session.pk, "runoff")), 400, "no_tie")
    assert not VotingSession.objects.filter(runoff_of=session).exists()


@pytest.mark.parametrize("action", ["override", "cancel", "runoff"])
def test_admin_actions_are_for_staff_only(pair, action):
    a, _, session = pair
    payload = {"submission_id": a.pk, "reason": "x"}
    assert_error(client_for().post(session_url(session.pk, action), payload, format="json"), 401, "not_authenticated")
    assert_error(
        client_for(UserFactory()).post(session_url(session.pk, action), payload, format="json"),
        403,
        "permission_denied",
    )
    session.refresh_from_db()
    assert session.status == "active"


@pytest.mark.parametrize("action", ["override", "cancel", "runoff"])
def test_admin_actions_on_unknown_session_are_404(staff, action):
    response = client_for(staff).post(session_url(999_999, action), {"submission_id": 1, "reason": "x"}, format="json")
    assert_error(response, 404, "not_found", message_has="999999")


# --- schema ---------------------------------------------------------------------------------


def test_schema_documents_the_voting_endpoints():
    response = client_for().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths["/api/v1/characters/submissions/{submission_id}/vote"]["post"]["responses"]) >= {
        "200",
        "401",
        "404",
        "409",
    }
    for path in (
        "/api/v1/stories/{story_id}/characters/submissions",
        "/api/v1/stories/{story_id}/voting-sessions",
        "/api/v1/voting-sessions/{session_id}",
        "/api/v1/voting-sessions/{session_id}/override",
        "/api/v1/voting-sessions/{session_id}/cancel",
        "/api/v1/voting-sessions/{session_id}/runoff",
    ):
        assert path in paths
