"""`load_demo_data` gives a newcomer a story with extracted clips, through the real services, once."""

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from characters.models import CandidateFrame, Character, Clip, PinnedCharacter, Story
from generation.models import GenerationJob
from voting.models import VotingSession

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # autocommit, as in `make run`: each upload is extracted at once
def test_demo_data_is_extracted_and_loading_it_again_changes_nothing(django_capture_on_commit_callbacks, capsys):
    call_command("load_demo_data", password="demo-pass-1")
    out = capsys.readouterr().out

    story = Story.objects.get(slug="the-astronaut")
    clips = list(story.clips.order_by("position"))
    assert [c.original_filename for c in clips] == ["astronaut-frontal.mp4", "astronaut-mixed.mp4"]
    assert all(c.status == Clip.Status.READY for c in clips), [(c.status, c.error_message) for c in clips]
    assert all(c.candidates.exists() for c in clips)
    assert all(f"{c.original_filename}: ready. {c.status_message}" in out for c in clips)  # the clip's own message
    assert {c.uploader.username for c in clips} == {"alice", "bob"}
    users = get_user_model().objects.in_bulk(["admin", "alice", "bob"], field_name="username")
    assert users["admin"].is_staff and users["admin"].is_superuser
    assert not users["alice"].is_staff and not users["bob"].is_staff
    assert all(u.check_password("demo-pass-1") for u in users.values())
    assert "admin  / demo-pass-1" in out
    # Verified addresses, so mandatory email verification does not keep them out of the log-in page.
    assert set(EmailAddress.objects.filter(verified=True, primary=True).values_list("user__username", flat=True)) == {
        "admin",
        "alice",
        "bob",
    }

    # The community steps on top: a decided vote, the locked character, a pin and a generated clip.
    character = Character.objects.get(story=story)
    assert character.status == "canonical" and character.allow_licensing and character.dna_file
    assert VotingSession.objects.get(story=story).decided_by == "admin"
    assert PinnedCharacter.objects.filter(story=story, element_index=1, is_active=True).exists()
    job = GenerationJob.objects.get(story=story)
    assert job.status == "complete" and job.video and job.consistency_score is not None

    frames_before = set(CandidateFrame.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        call_command("load_demo_data", password="demo-pass-1")
    assert callbacks == []  # nothing queued again
    assert Story.objects.count() == 1 and Clip.objects.count() == 2
    assert get_user_model().objects.count() == 3 and EmailAddress.objects.count() == 3
    assert Character.objects.count() == 1 and GenerationJob.objects.count() == 1
    assert set(CandidateFrame.objects.values_list("pk", flat=True)) == frames_before


def test_demo_password_is_refused_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--password"):
        call_command("load_demo_data")
    assert not get_user_model().objects.exists()
