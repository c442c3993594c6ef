"""A reference-to-video job is attributed to every character whose pins it really sent: each one's license is
checked and spends a use, each one's clips_used counts the clip, and a failed job gives every use back."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from characters.models import Character
from characters.pins import services as pin_services
from generation.models import GenerationJob
from marketplace import services as marketplace
from marketplace.models import License, LicenseUse
from tests.support.factories import StoryFactory, UserFactory
from tests.support.generation import canonical_character, pin, pinning_admin, stored_clip
from tests.support.generation_providers import api

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = "http://testserver"


def buyer_of(*characters: Character, username: str = "buyer"):
    """A user from elsewhere with a pack-of-10 license of each character (one license each)."""
    staff = UserFactory(username=f"{username}-granter", is_staff=True)
    buyer = UserFactory(username=username)
    marketplace.credits_grant(user=buyer, amount=1000, reason="test funds", granted_by=staff)
    licenses = [
        marketplace.license_purchase(buyer=buyer, character=c, license_type="pack_10").license for c in characters
    ]
    return buyer, licenses


def uses_left(license: License) -> int | None:
    return License.objects.get(pk=license.pk).uses_remaining


def clips_used(character: Character) -> int:
    return Character.objects.get(pk=character.pk).clips_used


@pytest.fixture
def two_characters(good_clip):
    """One story with two licensable characters, Ada (pin 1) and Bo (pin 2), made by someone else."""
    owner = UserFactory(username="owner")
    admin = pinning_admin()
    story = StoryFactory(title="Two of them", created_by=owner)
    clip = stored_clip(story, owner, good_clip)
    ada = canonical_character(story, owner, good_clip, name="Ada Quill", allow_licensing=True)
    bo = canonical_character(
        story, owner, good_clip, name="Bo Marsh", allow_licensing=True, palette={"hair": "#101010", "skin": "#E0B090"}
    )
    pin(story, clip, admin, 1, character=ada)
    pin(story, clip, admin, 2, character=bo)
    return story, ada, bo


def test_a_job_with_two_pinned_characters_spends_a_use_of_each_license_and_counts_for_both(
    fake_fal, two_characters, generate
):
    story, ada, bo = two_characters
    buyer, (ada_license, bo_license) = buyer_of(ada, bo)
    body = {"story_id": story.pk, "prompt": "@Element1 hands @Element2 a map"}

    quote = api(buyer).post("/api/v1/generate/quote", body, format="json").json()
    assert quote["mode"] == "reference-to-video"
    assert sorted(quote["character_ids"]) == sorted([ada.character_id, bo.character_id])
    assert (uses_left(ada_license), uses_left(bo_license)) == (10, 10)  # the quote spends nothing

    fake_fal.script_next(queued_polls=0)
    response = generate(buyer, **body)
    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    assert set(job.characters.all()) == {ada, bo}
    assert (uses_left(ada_license), uses_left(bo_license)) == (9, 9)
    uses = LicenseUse.objects.filter(job_ref__startswith=job.job_id)
    assert sorted(u.license_id for u in uses) == sorted([ada_license.pk, bo_license.pk])
    assert sorted(job.license_use_refs) == sorted(u.job_ref for u in uses)

    job.refresh_from_db()
    assert job.status == "complete", job.error
    assert (clips_used(ada), clips_used(bo)) == (1, 1)
    shown = api(buyer).get(f"/api/v1/generate/{job.job_id}").json()["character_ids"]
    assert shown == sorted([ada.character_id, bo.character_id])

    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    page = APIClient()
    page.force_login(admin)
    html = page.get(f"/admin/generation/generationjob/{job.pk}/change/").content.decode()
    assert "Ada Quill" in html and "Bo Marsh" in html and 'name="characters"' not in html  # shown, not editable


def test_a_failed_job_gives_back_the_use_of_every_license(fake_fal, two_characters, generate):
    story, ada, bo = two_characters
    buyer, (ada_license, bo_license) = buyer_of(ada, bo)
    fake_fal.script_next(submit_status=422, submit_detail="prompt: refused")

    response = generate(buyer, story_id=story.pk, prompt="@Element1 hands @Element2 a map")

    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    assert job.status == "failed"
    assert (uses_left(ada_license), uses_left(bo_license)) == (10, 10)
    assert LicenseUse.objects.filter(job_ref__startswith=job.job_id, refunded_at__isnull=True).count() == 0
    assert LicenseUse.objects.filter(job_ref__startswith=job.job_id).count() == 2
    assert (clips_used(ada), clips_used(bo)) == (0, 0)


def test_without_a_license_of_the_second_pinned_character_nothing_is_spent_or_queued(
    fake_fal, two_characters, generate
):
    story, ada, bo = two_characters
    buyer, (ada_license,) = buyer_of(ada)

    response = generate(buyer, story_id=story.pk, prompt="@Element1 hands @Element2 a map")

    assert response.status_code == 403, response.content
    assert "Bo Marsh" in response.json()["error"]["message"]
    assert not GenerationJob.objects.exists() and not fake_fal.submissions
    assert uses_left(ada_license) == 10 and not LicenseUse.objects.exists()  # Ada's use was rolled back


def test_a_licensed_character_from_another_story_and_the_own_storys_pinned_character_both_count(
    fake_fal, good_clip, generate
):
    """Ada belongs to someone else's story (licensed); Bo is the buyer's own character, pinned in the buyer's story."""
    owner = UserFactory(username="owner")
    ada = canonical_character(StoryFactory(created_by=owner), owner, good_clip, name="Ada Quill", allow_licensing=True)
    buyer, (ada_license,) = buyer_of(ada)
    own_story = StoryFactory(title="Mine", created_by=buyer)
    clip = stored_clip(own_story, buyer, good_clip)
    bo = canonical_character(own_story, buyer, good_clip, name="Bo Marsh")
    pin(own_story, clip, pinning_admin(), 1, character=bo)
    fake_fal.script_next(queued_polls=0)

    response = generate(buyer, story_id=own_story.pk, character_id=ada.character_id, prompt="@Element1 meets Ada")

    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    assert job.mode == "reference-to-video" and job.character == ada
    assert set(job.characters.all()) == {ada, bo}
    assert uses_left(ada_license) == 9
    assert [u.license_id for u in LicenseUse.objects.all()] == [ada_license.pk]  # Bo is the buyer's: no license
    job.refresh_from_db()
    assert job.status == "complete", job.error
    assert (clips_used(ada), clips_used(bo)) == (1, 1)


def test_only_the_characters_whose_pins_are_sent_are_charged(fake_fal, two_characters, generate):
    """Bo, the story's latest locked character, is not charged for a clip that sends only Ada's pin."""
    story, ada, bo = two_characters
    buyer, (ada_license, bo_license) = buyer_of(ada, bo)
    pin_services.pin_update(pin=story.pinned_characters.get(character=bo), user=pinning_admin("other"), is_active=False)
    fake_fal.script_next(queued_polls=0)

    response = generate(buyer, story_id=story.pk, prompt="@Element1 walks alone")

    job = GenerationJob.objects.get(job_id=response.json()["job_id"])
    assert job.mode == "reference-to-video" and len(job.pinned_character_ids) == 1
    assert list(job.characters.all()) == [ada] and job.character == ada
    assert (uses_left(ada_license), uses_left(bo_license)) == (9, 10)
    job.refresh_from_db()
    assert (clips_used(ada), clips_used(bo)) == (1, 0)
