"""Pinning services on real clips: the stored frame is the frame at the timestamp, slots, limits, the
last-frame shortcut, deactivate/delete with their files, permissions and the feature flag."""

import math
import threading

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from characters.clips import services
from characters.models import Clip, PinAngle, PinnedCharacter, PinningSettings
from characters.pins import frames as pin_frames
from characters.pins import selectors as pin_selectors
from characters.pins import services as pin_services
from common.exceptions import ServiceError
from demo import clips
from tests.conftest import uses_postgresql
from tests.support.factories import ClipFactory, PinnedCharacterFactory, StoryFactory
from tests.support.pinning import *  # noqa: F403 - the shared pinning fixtures
from tests.support.pinning import (
    decode_jpeg,
    frames_by_sequential_decoding,
    grant_pin_permission,
    mean_abs_diff,
    pinned_files,
    store_last_frame,
    upload_clip,
)

pytestmark = pytest.mark.django_db


def stored_bytes(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


# --- The frame at a timestamp ----------------------------------------------------------------------------


# Times in the mixed clip's moving segments (0-2 s zooms, 4-6 s dark, 6-8 s pans, 8-10 s coffee), and its very end.
@pytest.mark.parametrize("seconds", [0.0, 1.234, 5.0, 6.667, 8.9, 10.0])
def test_the_stored_frame_is_the_frame_at_that_timestamp(seconds, mixed, mixed_clip, pin_story, pin_admin, media_root):
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, label="Astronaut", frame_timestamp=seconds, user=pin_admin
    )

    assert pin.frontal_image.name == f"pinned/{pin_story.pk}/1_frontal.jpg"
    assert pinned_files(media_root) == [pin.frontal_image.name]
    stored = decode_jpeg(stored_bytes(pin.frontal_image.name))
    assert (pin.frontal_width, pin.frontal_height) == (1280, 720) == (stored.shape[1], stored.shape[0])
    assert pin.source_frame_seconds == seconds and pin.source_clip == mixed

    expected_index = min(math.floor(seconds * 30), 299)
    one_second_away = expected_index + 30 if expected_index + 30 < 300 else expected_index - 30
    neighbours = [i for i in (expected_index - 1, expected_index + 1) if 0 <= i < 300]
    frames = frames_by_sequential_decoding(mixed_clip, [expected_index, one_second_away, *neighbours])
    same = mean_abs_diff(stored, frames[expected_index])
    assert same < 2.0, "the stored JPEG differs from the frame decoded independently"
    for neighbour in neighbours:  # and it is that very frame, not the one beside it
        assert mean_abs_diff(stored, frames[neighbour]) > same
    assert mean_abs_diff(stored, frames[one_second_away]) > max(3 * same, 3.0)


def test_the_preview_is_byte_for_byte_what_is_stored(mixed, pin_story, pin_admin):
    preview = pin_frames.pin_frame_for(clip=mixed, frame_timestamp=1.5)
    assert preview.frame_index == 45 and (preview.width, preview.height) == (1280, 720)

    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=2, frame_timestamp=1.5, user=pin_admin
    )

    assert stored_bytes(pin.frontal_image.name) == preview.jpeg


def test_frame_index_rule_matches_the_panel():
    # Frame i is on screen during [i/fps, (i+1)/fps); the panel sends whole milliseconds.
    assert pin_frames.frame_index_at(0.033, 30, 300) == 0
    assert pin_frames.frame_index_at(0.034, 30, 300) == 1
    assert pin_frames.frame_index_at(0.1, 30, 300) == 3
    assert pin_frames.frame_index_at(10.0, 30, 300) == 299  # the end is the last frame
    assert pin_frames.format_precise_timestamp(75.0416) == "01:15.042"


@pytest.mark.parametrize("bad", [-0.001, 10.5, float("nan"), float("inf"), "soon", None])
def test_a_timestamp_outside_the_clip_is_refused_and_nothing_is_stored(bad, mixed, pin_story, pin_admin, media_root):
    with pytest.raises(pin_frames.InvalidTimestamp) as refused:
        pin_frames.clip_frame_at(clip=mixed, seconds=bad)
    assert refused.value.status_code == 400
    if bad == 10.5:
        assert "between 0 and 10.000 s" in refused.value.message

    with pytest.raises(pin_frames.InvalidTimestamp):
        pin_services.pin_create(
            story=pin_story,
            source_clip=mixed,
            element_index=1,
            frame_timestamp=bad if bad is not None else "",
            user=pin_admin,
        )
    assert not PinnedCharacter.objects.exists()
    assert pinned_files(media_root) == []


# --- Element image rules ------------------------------------------------------------------------------------


def test_a_frame_too_small_for_the_provider_is_refused_with_the_reason(tmp_path, pin_story, pin_admin, media_root):
    small = clips.write_clip(tmp_path / "small.mp4", [clips.Segment("astronaut", 2)], size=(320, 180), fps=24)
    clip = upload_clip(small, pin_story, pin_admin)

    with pytest.raises(pin_frames.FrameNotUsable) as refused:
        pin_services.pin_create(story=pin_story, source_clip=clip, element_index=1, frame_timestamp=1.0, user=pin_admin)

    assert refused.value.status_code == 422
    assert "320×180" in refused.value.message and "at least 300 px" in refused.value.message
    assert not PinnedCharacter.objects.exists() and pinned_files(media_root) == []


def test_a_vertical_clip_pins_as_it_is(tmp_path, pin_story, pin_admin):
    vertical = clips.write_clip(tmp_path / "vertical.mp4", [clips.Segment("astronaut", 2)], size=(360, 640), fps=25)
    clip = upload_clip(vertical, pin_story, pin_admin)

    pin = pin_services.pin_create(
        story=pin_story, source_clip=clip, element_index=1, frame_timestamp=0.5, user=pin_admin
    )

    assert (pin.frontal_width, pin.frontal_height) == (360, 640)


def test_element_image_rules():
    ok = {"width": 1280, "height": 720, "size_bytes": 300_000, "image_format": "JPEG"}
    assert pin_frames.element_image_problems(**ok) == []
    assert pin_frames.element_image_problems(**{**ok, "width": 300, "height": 300}) == []
    assert pin_frames.element_image_problems(**{**ok, "width": 300, "height": 750}) == []  # aspect 0.4
    assert "aspect ratio is 0.39" in pin_frames.element_image_problems(**{**ok, "width": 300, "height": 770})[0]
    assert "aspect ratio is 2.60" in pin_frames.element_image_problems(**{**ok, "width": 1300, "height": 500})[0]
    assert "at least 300 px" in pin_frames.element_image_problems(**{**ok, "width": 299, "height": 400})[0]
    assert "10 MB" in pin_frames.element_image_problems(**{**ok, "size_bytes": 10 * 1024 * 1024 + 1})[0]
    assert "JPEG or PNG" in pin_frames.element_image_problems(**{**ok, "image_format": "WEBP"})[0]


# --- Slots ---------------------------------------------------------------------------------------------------


def test_a_taken_slot_is_refused_and_the_first_pin_and_its_file_stay(mixed, pin_story, pin_admin, media_root):
    first = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    original = stored_bytes(first.frontal_image.name)

    with pytest.raises(pin_services.ElementTaken) as refused:
        pin_services.pin_create(
            story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=7.0, user=pin_admin
        )

    assert refused.value.status_code == 409
    assert "@Element1 is already pinned" in refused.value.message
    assert refused.value.details == {"free_element_indexes": [2, 3, 4]}
    assert list(PinnedCharacter.objects.values_list("pk", flat=True)) == [first.pk]
    assert stored_bytes(first.frontal_image.name) == original
    assert pinned_files(media_root) == [first.frontal_image.name]


@pytest.mark.parametrize("index", [0, 5, -1, "two", True])
def test_an_element_index_out_of_range_is_refused(index, mixed, pin_story, pin_admin, media_root):
    with pytest.raises(ServiceError) as refused:
        pin_services.pin_create(
            story=pin_story, source_clip=mixed, element_index=index, frame_timestamp=1.0, user=pin_admin
        )
    assert refused.value.code == "element_index_out_of_range"
    assert "between 1 and 4" in refused.value.message
    assert pinned_files(media_root) == []


def test_the_number_of_slots_comes_from_the_flag_config(mixed, pin_story, pin_admin):
    PinningSettings.objects.filter(pk=1).update(max_elements_per_season=2)
    with pytest.raises(ServiceError, match="between 1 and 2"):
        pin_services.pin_create(
            story=pin_story, source_clip=mixed, element_index=3, frame_timestamp=1.0, user=pin_admin
        )
    assert pin_selectors.free_element_indexes(pin_story) == [1, 2]


def test_the_same_slot_in_another_story_is_free(mixed, pin_story, pin_admin, good_clip):
    other_story = services.story_create(title="Other", created_by=pin_admin)
    other_clip = upload_clip(good_clip, other_story, pin_admin)
    a = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    b = pin_services.pin_create(
        story=other_story, source_clip=other_clip, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    assert a.frontal_image.name != b.frontal_image.name


def test_a_clip_of_another_story_is_refused(mixed, pin_story, pin_admin, good_clip, media_root):
    other_story = services.story_create(title="Elsewhere", created_by=pin_admin)
    foreign = upload_clip(good_clip, other_story, pin_admin)

    with pytest.raises(ServiceError) as refused:
        pin_services.pin_create(
            story=pin_story, source_clip=foreign, element_index=1, frame_timestamp=1.0, user=pin_admin
        )
    assert refused.value.code == "clip_of_another_story"

    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    with pytest.raises(ServiceError) as refused:
        pin_services.pin_add_angle(pin=pin, source_clip=foreign, frame_timestamp=1.0, user=pin_admin)
    assert refused.value.code == "clip_of_another_story"
    assert pinned_files(media_root) == [pin.frontal_image.name]


def test_a_stale_file_at_the_slot_name_is_replaced_not_renamed(mixed, pin_story, pin_admin, media_root):
    name = f"pinned/{pin_story.pk}/1_frontal.jpg"
    default_storage.save(name, ContentFile(b"left over from a crash"))

    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )

    assert pin.frontal_image.name == name
    assert pinned_files(media_root) == [name]
    assert stored_bytes(name).startswith(b"\xff\xd8")  # a JPEG now


@pytest.mark.skipif(not uses_postgresql(), reason="a real race needs PostgreSQL: run `make test`")
@pytest.mark.django_db(transaction=True)
def test_two_admins_racing_for_one_slot_on_postgresql(mixed, pin_story, pin_admin, media_root):
    barrier = threading.Barrier(2)
    outcomes = []

    def pin(seconds):
        try:
            barrier.wait()
            outcomes.append(
                pin_services.pin_create(
                    story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=seconds, user=pin_admin
                )
            )
        except ServiceError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pin, args=(s,)) for s in (1.0, 7.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    pins = [o for o in outcomes if isinstance(o, PinnedCharacter)]
    refusals = [o for o in outcomes if isinstance(o, ServiceError)]
    assert len(pins) == 1 and len(refusals) == 1 and refusals[0].code == "element_taken"
    assert PinnedCharacter.objects.count() == 1
    assert pinned_files(media_root) == [pins[0].frontal_image.name]
    winner_frame = pin_frames.pin_frame_for(clip=mixed, frame_timestamp=pins[0].source_frame_seconds)
    assert stored_bytes(pins[0].frontal_image.name) == winner_frame.jpeg  # the loser never overwrote it


# --- Angles -----------------------------------------------------------------------------------------------------


def test_angles_from_other_clips_are_numbered_and_capped_at_six(mixed, good, pin_story, pin_admin, media_root):
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=3, frame_timestamp=1.0, user=pin_admin
    )
    for k in range(1, 7):
        angle = pin_services.pin_add_angle(pin=pin, source_clip=good, frame_timestamp=k * 0.5, user=pin_admin)
        assert angle.position == k
        assert angle.image.name == f"pinned/{pin_story.pk}/3_angle_{k}.jpg"
    assert angle.source_clip == good and angle.source_frame_seconds == 3.0

    with pytest.raises(ServiceError) as refused:
        pin_services.pin_add_angle(pin=pin, source_clip=good, frame_timestamp=4.0, user=pin_admin)
    assert refused.value.status_code == 409 and "already has 6 angles" in refused.value.message
    assert pin.angles.count() == 6 and len(pinned_files(media_root)) == 7

    # Removing one frees its number (and deletes its file); the next angle takes it.
    pin_services.pin_remove_angle(angle=pin.angles.get(position=2), user=pin_admin)
    assert f"pinned/{pin_story.pk}/3_angle_2.jpg" not in pinned_files(media_root)
    again = pin_services.pin_add_angle(pin=pin, source_clip=good, frame_timestamp=4.0, user=pin_admin)
    assert again.position == 2 and again.image.name == f"pinned/{pin_story.pk}/3_angle_2.jpg"
    assert stored_bytes(again.image.name) == pin_frames.pin_frame_for(clip=good, frame_timestamp=4.0).jpeg


# --- The last-frame shortcut ------------------------------------------------------------------------------------


def test_pin_last_frame_reuses_the_stored_bytes_without_decoding(mixed, mixed_clip, pin_story, pin_admin):
    last_frame_bytes = store_last_frame(mixed, mixed_clip)
    # With the video gone, any decoding would fail: the shortcut must not need it.
    default_storage.delete(mixed.video.name)

    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=None, label="From the end", user=pin_admin
    )

    assert stored_bytes(pin.frontal_image.name) == last_frame_bytes
    assert pin.source_frame_seconds == mixed.last_frame_seconds == pytest.approx(9.967)
    assert (pin.frontal_width, pin.frontal_height) == (1280, 720)
    angle = pin_services.pin_add_angle(pin=pin, source_clip=mixed, frame_timestamp=None, user=pin_admin)
    assert stored_bytes(angle.image.name) == last_frame_bytes


def test_pin_last_frame_before_extraction_stored_one_is_refused(mixed, pin_story, pin_admin, media_root):
    with pytest.raises(ServiceError) as refused:
        pin_services.pin_create(
            story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=None, user=pin_admin
        )
    assert refused.value.code == "no_last_frame" and refused.value.status_code == 409
    assert pinned_files(media_root) == []


# --- Deactivate, delete, usage ----------------------------------------------------------------------------------


def test_deactivate_keeps_files_and_generation_stops_using_the_pin(mixed, good, pin_story, pin_admin, media_root):
    one = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    two = pin_services.pin_create(
        story=pin_story, source_clip=good, element_index=2, frame_timestamp=2.0, user=pin_admin
    )
    assert pin_selectors.story_active_pins(pin_story) == [one, two]

    pin_services.pin_update(pin=one, is_active=False, user=pin_admin)
    assert pin_selectors.story_active_pins(pin_story) == [two]
    assert len(pinned_files(media_root)) == 2

    pin_services.pin_update(pin=one, is_active=True, label="Renamed", user=pin_admin)
    assert pin_selectors.story_active_pins(pin_story) == [one, two]
    assert PinnedCharacter.objects.get(pk=one.pk).label == "Renamed"
    messages = list(
        LogEntry.objects.filter(object_id=str(one.pk), action_flag=CHANGE)
        .order_by("pk")
        .values_list("change_message", flat=True)
    )
    assert messages == ["Deactivated.", "Label set to “Renamed”. Reactivated."]


def test_delete_removes_the_rows_and_every_file(mixed, good, pin_story, pin_admin, media_root):
    keep = pin_services.pin_create(
        story=pin_story, source_clip=good, element_index=2, frame_timestamp=1.0, user=pin_admin
    )
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    for seconds in (1.0, 2.0):
        pin_services.pin_add_angle(pin=pin, source_clip=good, frame_timestamp=seconds, user=pin_admin)
    assert len(pinned_files(media_root)) == 4

    pin_id = pin.pk
    pin_services.pin_delete(pin=pin, user=pin_admin)

    assert not PinnedCharacter.objects.filter(pk=pin_id).exists() and not PinAngle.objects.exists()
    assert pinned_files(media_root) == [keep.frontal_image.name]
    entry = LogEntry.objects.get(object_id=str(pin_id), action_flag=DELETION)
    assert entry.user == pin_admin and "2 angle(s)" in entry.change_message
    # The slot is free again, and a new pin there writes the exact name.
    again = pin_services.pin_create(
        story=pin_story, source_clip=good, element_index=1, frame_timestamp=3.0, user=pin_admin
    )
    assert again.frontal_image.name == f"pinned/{pin_story.pk}/1_frontal.jpg"


def test_deleting_a_story_deletes_its_pin_files(mixed, good, pin_story, pin_admin, media_root):
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    pin_services.pin_add_angle(pin=pin, source_clip=good, frame_timestamp=1.0, user=pin_admin)

    pin_story.delete()

    assert pinned_files(media_root) == []


def test_every_change_is_in_the_admin_log(mixed, pin_story, pin_admin):
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.25, user=pin_admin
    )
    pin_services.pin_add_angle(pin=pin, source_clip=mixed, frame_timestamp=2.0, user=pin_admin)

    entries = LogEntry.objects.filter(object_id=str(pin.pk)).order_by("pk")
    assert [(e.action_flag, e.user_id) for e in entries] == [(ADDITION, pin_admin.pk), (CHANGE, pin_admin.pk)]
    assert entries[0].change_message == f"Pinned @Element1 from clip {mixed.pk} at 00:01.250 (frame 37)."
    assert entries[1].change_message == f"Added angle 1 from clip {mixed.pk} at 00:02.000 (frame 60)."


def test_record_usage_counts_atomically():
    pins = PinnedCharacterFactory.create_batch(2)
    PinnedCharacter.objects.filter(pk=pins[0].pk).update(usage_count=5)

    pin_services.pin_record_usage(pins)  # the in-memory counts (0) must not be written back
    pin_services.pin_record_usage(pins[:1])
    pin_services.pin_record_usage([])

    assert sorted(PinnedCharacter.objects.values_list("usage_count", flat=True)) == [1, 7]


def test_story_active_pins_ignores_slots_beyond_the_configured_maximum():
    story = StoryFactory()
    for n in (1, 3):
        PinnedCharacterFactory(story=story, element_index=n)
    PinningSettings.objects.filter(pk=1).update(max_elements_per_season=2)
    assert [p.element_index for p in pin_selectors.story_active_pins(story)] == [1]


# --- Who may pin, and the flag ----------------------------------------------------------------------------------


def test_only_staff_with_the_pin_permission_can_pin(mixed, pin_story, contributor, django_user_model, media_root):
    staff = django_user_model.objects.create_user("stan", password="pw-stan-123", is_staff=True)
    for user in (contributor, staff):
        with pytest.raises(ServiceError) as refused:
            pin_services.pin_create(story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=user)
        assert refused.value.status_code == 403
    grant_pin_permission(staff)
    staff = django_user_model.objects.get(pk=staff.pk)  # permissions are cached per instance
    pin_services.pin_create(story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=staff)
    assert len(pinned_files(media_root)) == 1


def test_the_flag_is_on_in_a_fresh_install_and_off_disables_every_write(mixed, pin_story, pin_admin, media_root):
    assert PinningSettings.objects.get(pk=1).enabled is True  # created by the data migration
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    PinningSettings.objects.filter(pk=1).update(enabled=False)

    calls = [
        lambda: pin_services.pin_create(
            story=pin_story, source_clip=mixed, element_index=2, frame_timestamp=1.0, user=pin_admin
        ),
        lambda: pin_services.pin_add_angle(pin=pin, source_clip=mixed, frame_timestamp=1.0, user=pin_admin),
        lambda: pin_services.pin_update(pin=pin, is_active=False, user=pin_admin),
        lambda: pin_services.pin_delete(pin=pin, user=pin_admin),
    ]
    for call in calls:
        with pytest.raises(pin_services.PinningDisabled, match="Character pinning is disabled"):
            call()
    assert pin_selectors.story_active_pins(pin_story) == []
    assert PinnedCharacter.objects.get(pk=pin.pk).is_active
    assert pinned_files(media_root) == [pin.frontal_image.name]


def test_settings_are_a_single_row():
    PinningSettings.objects.all().delete()
    assert pin_selectors.pinning_settings().enabled is True  # recreated, on
    PinningSettings(enabled=False).save()  # a second "row" is the same row
    assert PinningSettings.objects.count() == 1 and not pin_selectors.pinning_settings().enabled


def test_a_clip_whose_video_cannot_be_decoded_there_gives_a_clear_refusal(pin_story, pin_admin):
    clip = ClipFactory(story=pin_story, video="clips/missing.mp4", duration_seconds=4.0)
    with pytest.raises(pin_frames.FrameNotUsable) as refused:
        pin_services.pin_create(story=pin_story, source_clip=clip, element_index=1, frame_timestamp=1.0, user=pin_admin)
    assert refused.value.status_code == 422 and f"Clip {clip.pk} could not be opened" in refused.value.message
    assert Clip.objects.filter(pk=clip.pk).exists()
