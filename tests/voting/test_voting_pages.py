"""Contributor pages for submissions and votes: the story page's voting section and the submission form."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from characters.models import Character
from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory, UserFactory
from voting import services
from voting.models import CharacterSubmission, Vote, VotingSession

pytestmark = pytest.mark.django_db

STYLE = "Silver flight suit, short dark hair, calm and determined."


# --- Fixtures and helpers -----------------------------------------------------------------------
@pytest.fixture
def story():
    return StoryFactory(title="The Astronaut")


@pytest.fixture
def frames(story):
    first, second = ClipFactory(story=story, position=1), ClipFactory(story=story, position=2)
    return [CandidateFrameFactory(clip=first, rank=r) for r in (1, 2, 3)] + [
        CandidateFrameFactory(clip=second, rank=r) for r in (1, 2, 3)
    ]


@pytest.fixture
def ada():
    return UserFactory(username="ada")


@pytest.fixture
def ben():
    return UserFactory(username="ben")


@pytest.fixture
def voter():
    return UserFactory(username="vera")


@pytest.fixture
def open_session(story, frames, ada, ben):
    """Two designs for the protagonist: the second one opens the vote (auto-start is on by default)."""
    services.submission_create(
        story=story,
        submitter=ada,
        frame_ids=[frames[0].pk, frames[3].pk],
        style_description="Orange suit, curly hair.",
        character_name="Commander Eileen",
    )
    services.submission_create(
        story=story,
        submitter=ben,
        frame_ids=[frames[1].pk],
        style_description="White suit, helmet under the arm.",
        character_name="Specialist Ray",
    )
    return VotingSession.objects.get(status=VotingSession.Status.ACTIVE)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def submission_named(name: str) -> CharacterSubmission:
    return CharacterSubmission.objects.get(character_name=name)


def vote_url(submission) -> str:
    return reverse("submission-vote", args=[submission.pk])


def submit_url(story) -> str:
    return reverse("submission-create", args=[story.pk])


def page_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def checked_frame_ids(html: str) -> list[int]:
    return [int(v) for v in re.findall(r'name="frame_ids" value="(\d+)" checked', html)]


def section(html: str, element_id: str) -> str:
    """The markup of the vote card (an <article>) with this id."""
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</article>", start)]


def shows(html: str, text: str) -> bool:
    """The text appears on the page as a person reads it (templates escape quotes)."""
    return escape(text) in html


# --- Story page: open votes -----------------------------------------------------------------------
def test_story_page_lists_the_open_vote_with_its_designs_side_by_side(client, story, frames, open_session):
    html = client.get(story.get_absolute_url()).content.decode()

    card = section(html, f"session-{open_session.pk}")
    assert "Which design should be the protagonist?" in card
    for name, style, submitter in [
        ("Commander Eileen", "Orange suit, curly hair.", "ada"),
        ("Specialist Ray", "White suit, helmet under the arm.", "ben"),
    ]:
        assert name in card and style in card and f"by {submitter}" in card
    # Every chosen frame is shown as a thumbnail, in the order the submitter picked them.
    eileen = card.index('class="entry__name">Commander Eileen<')
    assert card.index(frames[0].thumbnail.url) < card.index(frames[3].thumbnail.url) < eileen
    assert frames[1].thumbnail.url in card
    assert card.count('class="entry"') + card.count('class="entry ') == 2
    # Time remaining, rendered by the server and counted down by the page's script.
    remaining = re.search(r'data-remaining-ms="(\d+)"', card)
    assert remaining and 23 * 3600_000 < int(remaining.group(1)) <= 24 * 3600_000
    assert re.search(r">\s*(23h 5\dm|24h 00m)\s*<", card)
    # Nobody signed in: an invitation to log in, and no tallies before voting.
    assert "Log in</a> to vote" in card
    assert "tally" not in card


def test_signed_in_voter_sees_a_vote_button_per_design_and_no_tallies_yet(story, open_session, voter):
    html = signed_in(voter).get(story.get_absolute_url()).content.decode()
    card = section(html, f"session-{open_session.pk}")
    for name in ("Commander Eileen", "Specialist Ray"):
        assert f'action="{vote_url(submission_named(name))}"' in card
    assert card.count('name="csrfmiddlewaretoken"') == 2
    assert 'data-role="tally"' not in card


def test_voting_through_the_page_counts_the_vote_and_shows_the_bars(story, open_session, voter):
    client = signed_in(voter)
    eileen = submission_named("Commander Eileen")

    response = client.post(vote_url(eileen))

    assert response.status_code == 302 and response["Location"] == story.get_absolute_url()
    vote = Vote.objects.get()
    assert (vote.voter, vote.submission, vote.session) == (voter, eileen, open_session)
    eileen.refresh_from_db()
    assert eileen.vote_count == 1

    page = client.get(response["Location"])
    assert page_messages(page) == ["Your vote for “Commander Eileen” is counted (1 vote so far)."]
    card = section(page.content.decode(), f"session-{open_session.pk}")
    assert "You voted." in card
    assert card.count('data-role="tally"') == 2
    assert 'aria-valuenow="100"' in card and 'aria-valuenow="0"' in card
    assert "100%" in card and "0%" in card
    # The chosen design is marked, and there is nothing left to vote with.
    chosen = card[card.index('class="entry entry--chosen"') :]
    assert "Your vote" in chosen[:2000] and "Commander Eileen" in chosen[:3000]
    assert card.count("entry--chosen") == 1
    assert "submission-vote" not in card and "/vote/" not in card


def test_a_second_vote_is_refused_with_a_message_and_changes_nothing(story, open_session, voter):
    client = signed_in(voter)
    eileen, ray = submission_named("Commander Eileen"), submission_named("Specialist Ray")
    client.post(vote_url(eileen), follow=True)

    response = client.post(vote_url(ray), follow=True)

    assert response.redirect_chain == [(story.get_absolute_url(), 302)]
    assert page_messages(response) == ["You have already voted in this session: one vote per person."]
    assert list(Vote.objects.values_list("voter", "submission")) == [(voter.pk, eileen.pk)]
    assert list(CharacterSubmission.objects.order_by("pk").values_list("vote_count", flat=True)) == [1, 0]
    card = section(response.content.decode(), f"session-{open_session.pk}")
    assert card.count("entry--chosen") == 1 and f'id="submission-{eileen.pk}"' in card


def test_anonymous_vote_goes_to_the_login_page_and_comes_back_to_the_story(client, story, open_session):
    response = client.post(vote_url(submission_named("Commander Eileen")))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={story.get_absolute_url()}"
    assert not Vote.objects.exists()
    assert page_messages(client.get(response["Location"])) == ["Log in to vote; you will come back to the story."]


def test_the_vote_form_is_csrf_protected(story, open_session, voter):
    client = Client(enforce_csrf_checks=True)
    client.force_login(voter)
    eileen = submission_named("Commander Eileen")

    forged = client.post(vote_url(eileen))
    assert forged.status_code == 403
    assert not Vote.objects.exists()

    # The page's own form carries the token, so a real click goes through.
    html = client.get(story.get_absolute_url()).content.decode()
    form = html[html.index(f'action="{vote_url(eileen)}"') :]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    assert client.post(vote_url(eileen), {"csrfmiddlewaretoken": token}).status_code == 302
    assert Vote.objects.filter(voter=voter, submission=eileen).exists()


def test_vote_views_answer_post_only(story, open_session, voter):
    client = signed_in(voter)
    assert client.get(vote_url(submission_named("Commander Eileen"))).status_code == 405
    assert not Vote.objects.exists()


def test_a_vote_after_the_session_ended_is_refused_with_a_clear_message(story, open_session, voter):
    now = timezone.now()
    VotingSession.objects.filter(pk=open_session.pk).update(
        starts_at=now - timedelta(hours=24), ends_at=now - timedelta(minutes=1)
    )

    response = signed_in(voter).post(vote_url(submission_named("Specialist Ray")), follow=True)

    [message] = page_messages(response)
    assert message.startswith("Voting for this session closed at")
    assert not Vote.objects.exists()
    card = section(response.content.decode(), f"session-{open_session.pk}")
    assert "Voting has ended." in card and "/vote/" not in card
    assert card.count('data-role="tally"') == 2  # once voting is over, everyone sees the standings


def test_a_vote_for_a_design_not_in_a_vote_says_so(story, frames, ada, voter):
    waiting = services.submission_create(
        story=story, submitter=ada, frame_ids=[frames[0].pk], style_description=STYLE, character_name="Lonely"
    )
    response = signed_in(voter).post(vote_url(waiting), follow=True)
    assert page_messages(response) == [
        "This submission is not in an open vote. Votes open once a story slot has enough submissions."
    ]
    assert not Vote.objects.exists()
    assert signed_in(voter).post(reverse("submission-vote", args=[999_999])).status_code == 404


def test_a_tied_session_says_it_is_waiting_for_an_admin(story, open_session, voter, settings):
    settings.VOTING_TIE_RULE = "admin"
    other = UserFactory(username="otto")
    services.vote_cast(submission_id=submission_named("Commander Eileen").pk, voter=voter)
    services.vote_cast(submission_id=submission_named("Specialist Ray").pk, voter=other)
    services.session_close(session_id=open_session.pk, now=open_session.ends_at + timedelta(seconds=1))

    html = signed_in(UserFactory(username="late")).get(story.get_absolute_url()).content.decode()

    card = section(html, f"session-{open_session.pk}")
    assert "Tied — waiting for an admin to decide." in card
    assert "Tied at 1 votes between submissions" in card
    assert card.count('data-role="tally"') == 2 and "/vote/" not in card


def test_a_decided_vote_shows_the_winner_how_it_was_decided_and_links_the_locked_character(story, open_session, voter):
    admin = UserFactory(username="root", is_staff=True)
    eileen = submission_named("Commander Eileen")
    services.vote_cast(submission_id=eileen.pk, voter=voter)
    services.session_override(
        session_id=open_session.pk, submission_id=eileen.pk, admin=admin, reason="Matches the pilot episode."
    )
    Character.objects.filter(origin_submission_id=eileen.pk).delete()  # whatever the lock task made
    character = Character.objects.create(
        character_id="commander_eileen_x1",
        name="Commander Eileen",
        story=story,
        status=Character.Status.CANONICAL,
        origin_submission_id=eileen.pk,
    )

    html = Client().get(story.get_absolute_url()).content.decode()

    result = html[html.index(f'id="session-{open_session.pk}"') :]
    result = result[: result.index("</li>")]
    assert "“Commander Eileen” won" in result and "1 of 1 vote" in result
    assert "Admin decision" in result and "by root" in result and "Matches the pilot episode." in result
    assert f'href="{character.get_absolute_url()}"' in result
    # And the story's cast shows the character with a link to its page.
    cast = html[html.index('id="characters"') : html.index('id="voting"')]
    assert f'href="{character.get_absolute_url()}"' in cast and "Canonical" in cast


def test_a_decided_vote_without_a_character_yet_says_it_is_being_locked(story, open_session, voter):
    eileen = submission_named("Commander Eileen")
    services.vote_cast(submission_id=eileen.pk, voter=voter)
    services.session_end_now(session_id=open_session.pk, admin=UserFactory(username="root", is_staff=True))
    Character.objects.all().delete()

    html = Client().get(story.get_absolute_url()).content.decode()

    assert "Plurality at expiry" in html and "Most votes (1) at expiry." in html
    assert "Locking the character…" in html


def test_a_tie_sent_to_a_runoff_links_the_runoff_vote(story, open_session, voter, settings):
    settings.VOTING_TIE_RULE = "runoff"
    services.vote_cast(submission_id=submission_named("Commander Eileen").pk, voter=voter)
    services.vote_cast(submission_id=submission_named("Specialist Ray").pk, voter=UserFactory(username="otto"))
    services.session_close(session_id=open_session.pk, now=open_session.ends_at + timedelta(seconds=1))
    runoff = VotingSession.objects.get(runoff_of=open_session)

    html = signed_in(voter).get(story.get_absolute_url()).content.decode()

    card = section(html, f"session-{runoff.pk}")
    assert "Runoff · Open vote" in card and "the earlier vote ended in a tie" in card
    assert card.count("/vote/") == 2  # a new round: everyone votes again
    result = html[html.index(f'<li class="card result" id="session-{open_session.pk}"') :]
    result = result[: result.index("</li>")]
    assert "Tied: sent to a runoff" in result and f'href="#session-{runoff.pk}"' in result


def test_a_cancelled_vote_says_so_and_its_designs_wait_for_the_next_one(story, open_session):
    services.session_cancel(
        session_id=open_session.pk, admin=UserFactory(username="root", is_staff=True), reason="Wrong clips."
    )
    html = Client().get(story.get_absolute_url()).content.decode()
    assert "Vote cancelled" in html and "Wrong clips." in html
    assert "Ready for a vote on the protagonist" in html
    assert "It opens with the next design, or when an admin starts it." in html


def test_a_single_design_waits_for_a_second_one(client, story, frames, ada):
    services.submission_create(
        story=story,
        submitter=ada,
        frame_ids=[frames[2].pk],
        style_description=STYLE,
        character_name="Solo",
        character_slot="sidekick",
    )
    html = client.get(story.get_absolute_url()).content.decode()
    assert "The vote for the sidekick opens with 1 more design" in html
    assert "Solo" in html and frames[2].thumbnail.url in html


def test_story_without_frames_has_no_submit_link(client, ada):
    story = StoryFactory()
    html = signed_in(ada).get(story.get_absolute_url()).content.decode()
    assert submit_url(story) not in html
    assert "upload a clip first" in html


# --- Your submissions and withdrawing ----------------------------------------------------------
def test_your_submissions_lists_your_designs_with_a_withdraw_button_when_allowed(story, frames, ada, open_session):
    waiting = services.submission_create(
        story=story,
        submitter=ada,
        frame_ids=[frames[4].pk],
        style_description=STYLE,
        character_name="Spare",
        character_slot="sidekick",
    )
    html = signed_in(ada).get(story.get_absolute_url()).content.decode()

    mine = html[html.index('id="your-submissions"') :]
    assert "Commander Eileen" in mine and "Spare" in mine and "Specialist Ray" not in mine
    assert f'action="{reverse("submission-withdraw", args=[waiting.pk])}"' in mine
    in_vote = submission_named("Commander Eileen")
    assert reverse("submission-withdraw", args=[in_vote.pk]) not in mine
    assert "Locked until the vote ends" in mine


def test_withdraw_through_the_page(story, frames, ada, ben):
    waiting = services.submission_create(
        story=story, submitter=ada, frame_ids=[frames[4].pk], style_description=STYLE, character_name="Spare"
    )
    url = reverse("submission-withdraw", args=[waiting.pk])

    refused = signed_in(ben).post(url, follow=True)
    assert page_messages(refused) == ["Only the submitter can withdraw a submission."]
    waiting.refresh_from_db()
    assert waiting.status == CharacterSubmission.Status.ACTIVE

    response = signed_in(ada).post(url, follow=True)
    assert page_messages(response) == ["“Spare” was withdrawn."]
    waiting.refresh_from_db()
    assert waiting.status == CharacterSubmission.Status.WITHDRAWN
    assert Client().post(url)["Location"].startswith(reverse("login"))


def test_a_design_in_an_open_vote_cannot_be_withdrawn(story, open_session, ada):
    eileen = submission_named("Commander Eileen")
    response = signed_in(ada).post(reverse("submission-withdraw", args=[eileen.pk]), follow=True)
    assert page_messages(response) == ["This submission is in an open vote and cannot be withdrawn until it ends."]
    eileen.refresh_from_db()
    assert eileen.status == CharacterSubmission.Status.ACTIVE


# --- Submission form ---------------------------------------------------------------------------
def test_submission_form_needs_a_signed_in_contributor(client, story, frames):
    response = client.get(submit_url(story))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.post(submit_url(story), {"frame_ids": [frames[0].pk], "style_description": STYLE}).status_code == 302
    assert not CharacterSubmission.objects.exists()


def test_submission_form_shows_the_story_candidate_grid(story, frames, ada):
    other_story_frame = CandidateFrameFactory()
    html = signed_in(ada).get(submit_url(story)).content.decode()

    boxes = re.findall(r'name="frame_ids" value="(\d+)"', html)
    assert boxes == [str(f.pk) for f in frames]  # grid order: clip by clip, best first
    assert str(other_story_frame.pk) not in boxes
    for frame in frames:
        assert frame.thumbnail.url in html and frame.timestamp in html
    assert "0</span> / 10 picked" in html
    assert 'name="character_slot"' not in html  # the character is picked (or inferred), never typed
    assert 'maxlength="500"' in html and 'data-role="char-count">0<' in html
    story_page = signed_in(ada).get(story.get_absolute_url()).content.decode()
    assert f'href="{submit_url(story)}"' in story_page


def test_submitting_a_design_creates_it_in_picked_order_and_waits_for_a_second(story, frames, ada):
    picked = [frames[4].pk, frames[0].pk, frames[2].pk]
    response = signed_in(ada).post(
        submit_url(story),
        {
            "frame_ids": sorted(picked),  # checkboxes arrive in grid order...
            "frame_order": ",".join(map(str, picked)),  # ...the page's script records the pick order
            "character_name": "Commander Eileen",
            "character_slot": "",
            "style_description": f"  {STYLE}  ",
        },
        follow=True,
    )

    assert response.redirect_chain == [(story.get_absolute_url(), 302)]
    submission = CharacterSubmission.objects.get()
    assert (submission.submitter, submission.story, submission.character_slot) == (ada, story, "protagonist")
    assert submission.frame_ids == picked
    assert submission.style_description == STYLE
    assert page_messages(response) == [
        "“Commander Eileen” was submitted for protagonist. "
        "The vote opens once another design is submitted for this character."
    ]
    assert not VotingSession.objects.exists()


def test_without_a_recorded_order_the_frames_keep_grid_order(story, frames, ada):
    signed_in(ada).post(submit_url(story), {"frame_ids": [frames[3].pk, frames[1].pk], "style_description": STYLE})
    assert CharacterSubmission.objects.get().frame_ids == [frames[3].pk, frames[1].pk]


def test_the_second_design_opens_the_vote_and_says_so(story, frames, ada, ben):
    signed_in(ada).post(
        submit_url(story), {"frame_ids": [frames[0].pk], "style_description": STYLE, "character_name": "First"}
    )
    response = signed_in(ben).post(
        submit_url(story),
        {"frame_ids": [frames[1].pk, frames[2].pk], "style_description": "Helmet on.", "character_name": "Second"},
        follow=True,
    )

    session = VotingSession.objects.get()
    assert session.status == VotingSession.Status.ACTIVE
    assert set(session.submissions.values_list("character_name", flat=True)) == {"First", "Second"}
    [message] = page_messages(response)
    assert message.startswith("“Second” was submitted for protagonist, and the vote is open: it runs until")
    assert f'id="session-{session.pk}"' in response.content.decode()


@pytest.mark.parametrize(("count", "expected"), [(0, "you picked 0"), (11, "you picked 11")])
def test_the_form_refuses_zero_or_eleven_frames_and_keeps_the_choices(story, ada, count, expected):
    clip = ClipFactory(story=story)
    frames = [CandidateFrameFactory(clip=clip, rank=r) for r in range(1, 12)]
    ids = [f.pk for f in frames[:count]]

    response = signed_in(ada).post(
        submit_url(story), {"frame_ids": ids, "style_description": STYLE, "character_name": "Too Many"}
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert f"Pick between 1 and 10 frames ({expected})." in html
    assert 'id="frames-error"' in html and "Your design was not submitted." in html
    assert checked_frame_ids(html) == ids
    assert STYLE in html and 'value="Too Many"' in html
    assert f"{count}</span> / 10 picked" in html
    assert not CharacterSubmission.objects.exists()


def test_the_form_refuses_frames_of_another_story_and_keeps_the_rest(story, frames, ada):
    foreign = CandidateFrameFactory()  # a frame of another story's clip
    order = [frames[2].pk, foreign.pk, frames[0].pk]

    response = signed_in(ada).post(
        submit_url(story),
        {
            "frame_ids": [frames[0].pk, frames[2].pk, foreign.pk],
            "frame_order": ",".join(map(str, order)),
            "style_description": STYLE,
        },
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert shows(html, f"Frames {foreign.pk} are not candidate frames of this story's clips.")
    assert checked_frame_ids(html) == [frames[0].pk, frames[2].pk]
    # The pick order is kept too: the numbers on the tiles and the hidden field.
    assert f'name="frame_order" value="{frames[2].pk},{foreign.pk},{frames[0].pk}"' in html
    first_tile = html[html.index(f'value="{frames[0].pk}" checked') :]
    assert re.search(r'data-role="order" aria-hidden="true">3<', first_tile[:800])
    assert not CharacterSubmission.objects.exists()


def test_the_form_refuses_an_empty_description_next_to_the_field(story, frames, ada):
    response = signed_in(ada).post(
        submit_url(story), {"frame_ids": [frames[1].pk, frames[5].pk], "style_description": "   "}
    )
    assert response.status_code == 400
    html = response.content.decode()
    field = html[html.index('for="id_style_description"') :]
    assert shows(field[:1500], "Describe the character's style (up to 500 characters).")
    assert checked_frame_ids(html) == [frames[1].pk, frames[5].pk]
    assert not CharacterSubmission.objects.exists()


def test_the_form_shows_every_problem_at_once(story, frames, ada):
    """No frames and no description: both are said, each next to its part of the form, in one go."""
    response = signed_in(ada).post(submit_url(story), {"frame_ids": [], "style_description": ""})
    assert response.status_code == 400
    html = response.content.decode()
    frames_error = html[html.index('id="frames-error"') :]
    assert shows(frames_error[:400], "Pick between 1 and 10 frames (you picked 0).")
    field = html[html.index('for="id_style_description"') :]
    assert shows(field[:1500], "Describe the character's style (up to 500 characters).")
    summary = html[html.index('id="form-errors"') :]
    summary = summary[: summary.index("</div>")]
    assert "Pick between 1 and 10 frames" in summary and "Describe the character" in summary
    assert not CharacterSubmission.objects.exists()


def test_the_form_refuses_a_description_over_500_characters(story, frames, ada):
    response = signed_in(ada).post(submit_url(story), {"frame_ids": [frames[1].pk], "style_description": "x" * 501})
    assert response.status_code == 400
    assert "The style description is 501 characters; the limit is 500." in response.content.decode()
    assert not CharacterSubmission.objects.exists()


def test_the_form_takes_no_typed_slot(story, frames, ada):
    """The page has no slot field: a slot posted anyway is not what the design is filed under."""
    response = signed_in(ada).post(
        submit_url(story), {"frame_ids": [frames[1].pk], "style_description": STYLE, "character_slot": "villain"}
    )
    assert response.status_code == 302
    assert CharacterSubmission.objects.get().character_slot == "protagonist"


def test_the_submission_form_is_csrf_protected(story, frames, ada):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ada)
    assert client.post(submit_url(story), {"frame_ids": [frames[0].pk], "style_description": STYLE}).status_code == 403
    assert not CharacterSubmission.objects.exists()


# --- Character page ------------------------------------------------------------------------------
def test_character_page_shows_the_dna_at_a_glance(client, story, ada):
    character = Character.objects.create(
        character_id="mira_vance_a1",
        name="Mira Vance",
        story=story,
        status=Character.Status.CANONICAL,
        style_description="Short dark hair, orange flight suit.",
        color_palette={"hair": "#2B1D14", "skin": "#C68E6E"},
        locked_features=["short dark hair", "orange flight suit"],
        total_votes=12,
        clips_used=3,
        creator=ada,
        dna_file="characters/mira_vance_a1/dna.json",
        model_sheet="characters/mira_vance_a1/model_sheet.png",
    )
    html = client.get(character.get_absolute_url()).content.decode()

    assert "Mira Vance" in html and "Canonical" in html and story.get_absolute_url() in html
    assert "Short dark hair, orange flight suit." in html
    assert "#2B1D14" in html and 'fill="#C68E6E"' in html  # the chip is drawn in the measured colour
    assert "<li>short dark hair</li>" in html and "<li>orange flight suit</li>" in html
    assert re.search(r"<dt>Votes</dt><dd>12</dd>", html) and re.search(r"<dt>Clips used</dt><dd>3</dd>", html)
    assert "ada" in html
    assert f'href="{reverse("character-file", args=[character.character_id, "dna.json"])}" download' in html
    assert character.model_sheet.url in html


def test_time_left_reads_like_a_countdown():
    from voting.templatetags.voting_tags import time_left

    assert time_left(0) == "ended"
    assert time_left(1) == "0m 01s"
    assert time_left(65_000) == "1m 05s"
    assert time_left((3 * 3600 + 7 * 60) * 1000) == "3h 07m"
    assert time_left(24 * 3600 * 1000) == "24h 00m"
    assert time_left((50 * 3600) * 1000) == "2d 2h"


def test_the_voting_section_makes_the_same_number_of_queries_for_more_designs(voter):
    def story_page_queries(designs: int) -> int:
        story = StoryFactory()
        clip = ClipFactory(story=story)
        frames = [CandidateFrameFactory(clip=clip, rank=r) for r in (1, 2, 3)]
        with override_settings(VOTING_AUTO_START=False):
            entries = [
                services.submission_create(
                    story=story, submitter=UserFactory(), style_description=STYLE, frame_ids=[f.pk for f in frames]
                )
                for _ in range(designs)
            ]
        services.session_start(story=story)
        services.vote_cast(submission_id=entries[0].pk, voter=voter)
        services.submission_create(
            story=story, submitter=voter, frame_ids=[frames[0].pk], style_description=STYLE, character_slot="sidekick"
        )
        client = signed_in(voter)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(story.get_absolute_url()).status_code == 200
        return len(captured)

    assert story_page_queries(2) == story_page_queries(6)
