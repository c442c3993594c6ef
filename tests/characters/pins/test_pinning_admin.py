"""The pin panel in the Django admin (server side; test_browser_pin_panel.py drives it in Chromium)."""

import re

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.urls import reverse

from characters.models import PinnedCharacter, PinningSettings
from characters.pins import frames as pin_frames
from characters.pins import services as pin_services
from tests.support.factories import CandidateFrameFactory
from tests.support.pinning import *  # noqa: F403 - the shared pinning fixtures
from tests.support.pinning import decode_jpeg, grant_pin_permission, pinned_files, store_last_frame

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, pin_admin):
    client.force_login(pin_admin)
    return client


def panel_url(clip) -> str:
    return reverse("admin:characters_clip_pin", args=[clip.pk])


def test_the_clip_and_story_change_pages_have_a_pin_character_button(admin_client, mixed, pin_story):
    clip_page = admin_client.get(reverse("admin:characters_clip_change", args=[mixed.pk])).content.decode()
    assert f'href="{panel_url(mixed)}" class="pin-character-link">Pin character</a>' in clip_page
    story_page = admin_client.get(reverse("admin:characters_story_change", args=[pin_story.pk])).content.decode()
    story_panel = reverse("admin:characters_story_pin", args=[pin_story.pk])
    assert f'href="{story_panel}" class="pin-character-link">Pin character</a>' in story_page


def test_the_panel_has_the_player_scrubber_steps_candidates_preview_and_slots(
    admin_client, mixed, good, pin_story, pin_admin
):
    CandidateFrameFactory(clip=mixed, seconds=1.5, rank=1, quality=91)
    CandidateFrameFactory(clip=mixed, seconds=6.5, rank=2, quality=70)
    pin_services.pin_create(
        story=pin_story, source_clip=good, element_index=2, label="Sidekick", frame_timestamp=1.0, user=pin_admin
    )

    response = admin_client.get(panel_url(mixed))

    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Pin characters · Pin Story" in html
    assert f'<a href="{reverse("admin:characters_clip_change", args=[mixed.pk])}">' in html  # breadcrumbs
    assert f'src="{mixed.video.url}"' in html and 'data-role="scrubber"' in html
    for step in (
        'data-step="frame" data-amount="-1"',
        'data-step="frame" data-amount="1"',
        'data-step="second" data-amount="-1"',
        'data-step="second" data-amount="1"',
    ):
        assert step in html
    assert re.findall(r'class="pin-candidate" data-seconds="([\d.]+)"', html) == ["1.500", "6.500"]
    assert 'value="1.500"' in html  # opens at the best candidate frame
    assert [int(n) for n in re.findall(r'value="pin:(\d+)"', html)] == [1, 3, 4]  # slot 2 is taken
    pin = PinnedCharacter.objects.get()
    assert f'value="angle:{pin.pk}"' in html and "Add as angle to @Element2 · Sidekick" in html
    assert reverse("admin:characters_clip_pin_preview", args=[mixed.pk]) in html
    assert "static/js/pin-panel.js" in html and "static/css/pin-panel.css" in html
    assert "?next=" in html and reverse("admin:characters_pinnedcharacter_unpin", args=[pin.pk]) in html
    assert html.count('class="pin-clips__item') == 2  # the story's other clip is one click away


def test_the_story_panel_chooses_among_the_story_clips(admin_client, mixed, good, pin_story):
    url = reverse("admin:characters_story_pin", args=[pin_story.pk])
    first = admin_client.get(url).content.decode()
    assert f'src="{mixed.video.url}"' in first
    chosen = admin_client.get(f"{url}?clip={good.pk}").content.decode()
    assert f'src="{good.video.url}"' in chosen and f'src="{mixed.video.url}"' not in chosen
    assert f'<a href="{reverse("admin:characters_story_change", args=[pin_story.pk])}">' in chosen


def test_the_preview_is_the_exact_jpeg_that_will_be_stored(admin_client, mixed):
    url = reverse("admin:characters_clip_pin_preview", args=[mixed.pk])
    response = admin_client.get(url, {"t": "6.667"})
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, max-age=300"
    assert (response["X-Frame-Index"], response["X-Frame-Width"], response["X-Frame-Height"]) == ("200", "1280", "720")
    assert response.content == pin_frames.pin_frame_for(clip=mixed, frame_timestamp=6.667).jpeg
    assert decode_jpeg(response.content).shape == (720, 1280, 3)

    refused = admin_client.get(url, {"t": "11"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_timestamp"
    no_last = admin_client.get(url, {"t": "last"})
    assert no_last.status_code == 409 and "no stored last frame" in no_last.json()["error"]["message"]


def test_pinning_from_the_panel_then_an_angle_then_last_frame(
    admin_client, mixed, mixed_clip, good, pin_story, pin_admin, media_root
):
    response = admin_client.post(panel_url(mixed), {"do": "pin:1", "frame_timestamp": "1.234", "label": "Astro"})
    assert response.status_code == 302 and response["Location"] == f"{panel_url(mixed)}?t=1.234"
    pin = PinnedCharacter.objects.get()
    assert (pin.element_index, pin.label, pin.source_clip, pin.source_frame_seconds) == (1, "Astro", mixed, 1.234)
    assert LogEntry.objects.get(object_id=str(pin.pk), action_flag=ADDITION).user == pin_admin

    admin_client.post(panel_url(good), {"do": f"angle:{pin.pk}", "frame_timestamp": "2.5"})
    assert list(pin.angles.values_list("position", "source_clip", "source_frame_seconds")) == [(1, good.pk, 2.5)]

    store_last_frame(mixed, mixed_clip)
    admin_client.post(panel_url(mixed), {"do": "pin-last:3", "frame_timestamp": "", "label": "Ending"})
    last = PinnedCharacter.objects.get(element_index=3)
    with last.frontal_image.open("rb") as stored, mixed.last_frame.open("rb") as original:
        assert stored.read() == original.read()
    assert pinned_files(media_root) == [
        f"pinned/{pin_story.pk}/1_angle_1.jpg",
        f"pinned/{pin_story.pk}/1_frontal.jpg",
        f"pinned/{pin_story.pk}/3_frontal.jpg",
    ]
    messages = [str(m) for m in admin_client.get(panel_url(mixed)).context["messages"]]
    assert messages == ["Pinned @Element1 · Astro.", "Added angle 1 to @Element1 Astro.", "Pinned @Element3 · Ending."]


def test_a_refused_pin_shows_the_reason_and_stores_nothing(admin_client, mixed, pin_story, media_root):
    response = admin_client.post(panel_url(mixed), {"do": "pin:2", "frame_timestamp": "42"}, follow=True)
    assert "outside clip" in [str(m) for m in response.context["messages"]][0]
    assert not PinnedCharacter.objects.exists() and pinned_files(media_root) == []


def test_deactivate_reactivate_and_delete_with_confirmation(admin_client, mixed, pin_story, pin_admin, media_root):
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    back = panel_url(mixed)
    active_url = reverse("admin:characters_pinnedcharacter_active", args=[pin.pk])

    assert admin_client.get(active_url).status_code == 405  # changes only by POST
    response = admin_client.post(active_url, {"is_active": "0", "next": back})
    assert response.status_code == 302 and response["Location"] == back
    assert not PinnedCharacter.objects.get().is_active
    assert "Reactivate" in admin_client.get(back).content.decode()
    admin_client.post(active_url, {"is_active": "1", "next": "https://elsewhere.example/"})
    assert PinnedCharacter.objects.get().is_active

    unpin_url = reverse("admin:characters_pinnedcharacter_unpin", args=[pin.pk])
    confirmation = admin_client.get(f"{unpin_url}?next={back}")
    assert confirmation.status_code == 200 and "Are you sure" in confirmation.content.decode()
    assert pin.frontal_image.name in confirmation.content.decode()
    assert PinnedCharacter.objects.exists()  # asking deletes nothing
    # The admin's own delete link leads to the same confirmation.
    django_delete = admin_client.get(reverse("admin:characters_pinnedcharacter_delete", args=[pin.pk]))
    assert django_delete["Location"] == unpin_url

    done = admin_client.post(f"{unpin_url}?next={back}", {"next": back})
    assert done.status_code == 302 and done["Location"] == back
    assert not PinnedCharacter.objects.exists() and pinned_files(media_root) == []


def test_contributors_and_staff_without_the_permission_are_refused(
    client, mixed, pin_story, contributor, django_user_model, pin_admin
):
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    urls = [
        panel_url(mixed),
        reverse("admin:characters_clip_pin_preview", args=[mixed.pk]) + "?t=1",
        reverse("admin:characters_story_pin", args=[pin_story.pk]),
        reverse("admin:characters_pinnedcharacter_unpin", args=[pin.pk]),
    ]

    client.force_login(contributor)  # not staff: the admin sends them to its login page
    for url in urls:
        assert client.get(url)["Location"].startswith(reverse("admin:login"))
    assert client.post(panel_url(mixed), {"do": "pin:2", "frame_timestamp": "1"}).status_code == 302

    staff = django_user_model.objects.create_user("stu", password="pw-stu-12345", is_staff=True)
    client.force_login(staff)
    for url in urls:
        assert client.get(url).status_code == 403
    assert client.post(panel_url(mixed), {"do": "pin:2", "frame_timestamp": "1"}).status_code == 403
    assert (
        client.post(reverse("admin:characters_pinnedcharacter_active", args=[pin.pk]), {"is_active": "0"}).status_code
        == 403
    )
    change_page = client.get(reverse("admin:characters_clip_change", args=[mixed.pk]))
    assert change_page.status_code in (200, 403) and b"Pin character" not in change_page.content
    assert list(PinnedCharacter.objects.values_list("element_index", "is_active")) == [(1, True)]

    grant_pin_permission(staff)
    assert client.get(panel_url(mixed)).status_code == 200


def test_with_the_flag_off_the_panel_says_pinning_is_disabled(admin_client, mixed, pin_story):
    PinningSettings.objects.filter(pk=1).update(enabled=False)
    for url in (panel_url(mixed), reverse("admin:characters_story_pin", args=[pin_story.pk])):
        response = admin_client.get(url)
        assert response.status_code == 403
        assert "Character pinning is disabled." in response.content.decode()
    assert admin_client.post(panel_url(mixed), {"do": "pin:1", "frame_timestamp": "1"}).status_code == 403
    preview = admin_client.get(reverse("admin:characters_clip_pin_preview", args=[mixed.pk]), {"t": "1"})
    assert preview.status_code == 403 and preview.json()["error"]["message"] == "Character pinning is disabled."
    assert not PinnedCharacter.objects.exists()


def test_the_flag_is_edited_in_the_admin(admin_client):
    changelist = admin_client.get(reverse("admin:characters_pinningsettings_changelist"))
    change_url = reverse("admin:characters_pinningsettings_change", args=[1])
    assert changelist["Location"] == change_url
    response = admin_client.post(change_url, {"max_elements_per_season": 3, "auto_switch_model": "on"})
    assert response.status_code == 302
    config = PinningSettings.objects.get()
    assert (config.enabled, config.max_elements_per_season, config.auto_switch_model, config.cost_premium_warning) == (
        False,
        3,
        True,
        False,
    )
    too_many = admin_client.post(change_url, {"enabled": "on", "max_elements_per_season": 8})
    assert too_many.status_code == 200 and PinningSettings.objects.get().max_elements_per_season == 3


def test_the_pin_list_in_the_admin(admin_client, mixed, pin_story, pin_admin):
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, label="Listed", frame_timestamp=1.0, user=pin_admin
    )
    changelist = admin_client.get(reverse("admin:characters_pinnedcharacter_changelist")).content.decode()
    assert "Listed" in changelist and pin.frontal_image.url in changelist
    assert "delete_selected" not in changelist
    admin_client.post(
        reverse("admin:characters_pinnedcharacter_changelist"), {"action": "deactivate", "_selected_action": [pin.pk]}
    )
    assert not PinnedCharacter.objects.get().is_active
    detail = admin_client.get(reverse("admin:characters_pinnedcharacter_change", args=[pin.pk])).content.decode()
    assert reverse("admin:characters_story_pin", args=[pin_story.pk]) in detail


def test_a_story_without_clips_has_a_panel_with_its_slots(admin_client, pin_story):
    response = admin_client.get(reverse("admin:characters_story_pin", args=[pin_story.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "This story has no clips yet." in html and 'data-role="player"' not in html
    assert html.count('class="pin-slot pin-slot--free"') == 4


def test_removing_an_angle_from_the_panel(admin_client, mixed, good, pin_story, pin_admin, media_root):
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    pin_services.pin_add_angle(pin=pin, source_clip=good, frame_timestamp=1.0, user=pin_admin)
    url = reverse("admin:characters_pinnedcharacter_remove_angle", args=[pin.pk, 1])
    assert url in admin_client.get(panel_url(mixed)).content.decode()

    response = admin_client.post(url, {"next": panel_url(mixed)})

    assert response.status_code == 302 and response["Location"] == panel_url(mixed)
    assert not pin.angles.exists() and pinned_files(media_root) == [pin.frontal_image.name]
