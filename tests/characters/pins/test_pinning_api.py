"""The pinned-characters API: the plan's shapes, staff only, clear 4xx with nothing stored."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from characters.clips import services
from characters.models import PinAngle, PinnedCharacter, PinningSettings
from characters.pins import frames as pin_frames
from characters.pins import services as pin_services
from tests.support.pinning import *  # noqa: F403 - the shared pinning fixtures
from tests.support.pinning import pinned_files, store_last_frame, upload_clip

pytestmark = pytest.mark.django_db

PINS = "/api/v1/admin/pinned-characters"


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def api(pin_admin) -> APIClient:
    return bearer(pin_admin)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


def test_pin_list_angles_and_the_public_view(api, mixed, good, pin_story, pin_admin, contributor, media_root):
    created = api.post(
        PINS,
        {
            "story_id": pin_story.pk,
            "source_clip_id": mixed.pk,
            "frame_timestamp": 1.5,
            "label": "Main Robot",
            "element_index": 1,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["ok"] is True
    pin = body["character"]
    assert pin["element_index"] == 1 and pin["element_tag"] == "@Element1" and pin["label"] == "Main Robot"
    assert pin["frontal_image_url"] == f"http://testserver/media/pinned/{pin_story.pk}/1_frontal.jpg"
    assert pin["source_clip_id"] == mixed.pk and pin["source_frame_timestamp"] == 1.5
    assert pin["pinned_by"] == "pinner" and pin["usage_count"] == 0 and pin["is_active"] is True
    assert pin["reference_image_urls"] == [] and pin["angles"] == []
    assert (pin["frontal_width"], pin["frontal_height"]) == (1280, 720)

    angle = api.post(f"{PINS}/{pin['id']}/angles", {"source_clip_id": good.pk, "frame_timestamp": 2.0}, format="json")
    assert angle.status_code == 201, angle.content
    with_angle = angle.json()["character"]
    assert with_angle["reference_image_urls"] == [f"http://testserver/media/pinned/{pin_story.pk}/1_angle_1.jpg"]
    assert with_angle["angles"][0] | {"created_at": None} == {
        "position": 1,
        "image_url": with_angle["reference_image_urls"][0],
        "width": 1280,
        "height": 720,
        "source_clip_id": good.pk,
        "source_frame_timestamp": 2.0,
        "created_at": None,
    }
    assert pinned_files(media_root) == [f"pinned/{pin_story.pk}/1_angle_1.jpg", f"pinned/{pin_story.pk}/1_frontal.jpg"]

    listed = api.get(PINS, {"story_id": pin_story.pk})
    assert listed.status_code == 200
    assert listed.json() == {"ok": True, "characters": [with_angle]}

    public = bearer(contributor).get(f"/api/v1/stories/{pin_story.pk}/pinned-characters")
    assert public.status_code == 200
    assert public.json() == {
        "ok": True,
        "characters": [
            {
                "element_index": 1,
                "label": "Main Robot",
                "frontal_image_url": pin["frontal_image_url"],
                "reference_count": 1,
            }
        ],
    }


def test_the_frame_stored_through_the_api_is_the_preview_frame(api, good, pin_story):
    response = api.post(
        PINS,
        {"story_id": pin_story.pk, "source_clip_id": good.pk, "frame_timestamp": 3.2, "element_index": 2},
        format="json",
    )
    assert response.status_code == 201
    stored = PinnedCharacter.objects.get()
    with stored.frontal_image.open("rb") as fh:
        assert fh.read() == pin_frames.pin_frame_for(clip=good, frame_timestamp=3.2).jpeg


def test_null_timestamp_pins_the_stored_last_frame(api, mixed, mixed_clip, pin_story):
    last_frame = store_last_frame(mixed, mixed_clip)
    response = api.post(
        PINS,
        {
            "story_id": pin_story.pk,
            "source_clip_id": mixed.pk,
            "frame_timestamp": None,
            "label": "End",
            "element_index": 4,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["character"]["source_frame_timestamp"] == pytest.approx(9.967)
    with PinnedCharacter.objects.get().frontal_image.open("rb") as fh:
        assert fh.read() == last_frame


def test_deactivate_reactivate_and_the_public_view(api, mixed, pin_story, pin_admin, contributor):
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    off = api.patch(f"{PINS}/{pin.pk}", {"is_active": False}, format="json")
    assert off.status_code == 200 and off.json()["character"]["is_active"] is False
    public = bearer(contributor).get(f"/api/v1/stories/{pin_story.pk}/pinned-characters")
    assert public.json() == {"ok": True, "characters": []}
    assert api.get(PINS, {"story_id": pin_story.pk}).json()["characters"][0]["is_active"] is False

    on = api.patch(f"{PINS}/{pin.pk}", {"is_active": True, "label": "Back"}, format="json")
    assert on.status_code == 200 and on.json()["character"]["is_active"] is True
    assert on.json()["character"]["label"] == "Back"
    assert len(bearer(contributor).get(f"/api/v1/stories/{pin_story.pk}/pinned-characters").json()["characters"]) == 1


def test_delete_removes_the_pin_and_its_files(api, mixed, good, pin_story, media_root):
    pin_id = api.post(
        PINS,
        {"story_id": pin_story.pk, "source_clip_id": mixed.pk, "frame_timestamp": 1.0, "element_index": 1},
        format="json",
    ).json()["character"]["id"]
    api.post(f"{PINS}/{pin_id}/angles", {"source_clip_id": good.pk, "frame_timestamp": 1.0}, format="json")
    assert len(pinned_files(media_root)) == 2

    deleted = api.delete(f"{PINS}?id={pin_id}")

    assert deleted.status_code == 200 and deleted.json() == {"ok": True, "id": pin_id}
    assert not PinnedCharacter.objects.exists() and not PinAngle.objects.exists()
    assert pinned_files(media_root) == []
    assert error_of(api.delete(f"{PINS}?id={pin_id}"))["code"] == "not_found"


def test_removing_one_angle(api, mixed, pin_story, media_root):
    pin_id = api.post(
        PINS,
        {"story_id": pin_story.pk, "source_clip_id": mixed.pk, "frame_timestamp": 1.0, "element_index": 1},
        format="json",
    ).json()["character"]["id"]
    api.post(f"{PINS}/{pin_id}/angles", {"source_clip_id": mixed.pk, "frame_timestamp": 7.0}, format="json")

    removed = api.delete(f"{PINS}/{pin_id}/angles/1")

    assert removed.status_code == 200 and removed.json()["character"]["angles"] == []
    assert pinned_files(media_root) == [f"pinned/{pin_story.pk}/1_frontal.jpg"]
    assert api.delete(f"{PINS}/{pin_id}/angles/1").status_code == 404


# --- Refusals: a 4xx with a clear message, and nothing stored ------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "code", "words"),
    [
        ({"element_index": 0}, 400, "element_index_out_of_range", "between 1 and 4"),
        ({"element_index": 5}, 400, "element_index_out_of_range", "between 1 and 4"),
        ({"frame_timestamp": 10.5}, 400, "invalid_timestamp", "outside clip"),
        ({"frame_timestamp": -1}, 400, "invalid_timestamp", "between 0 and 10.000 s"),
        ({"frame_timestamp": "later"}, 400, "invalid", "frame_timestamp"),
        ({"frame_timestamp": None}, 409, "no_last_frame", "no stored last frame"),
        ({"label": "x" * 101}, 400, "invalid", "label"),
        ({"source_clip_id": 999999}, 404, "not_found", "no clip 999999"),
        ({"story_id": 999999}, 404, "not_found", "no story 999999"),
        ({"character_id": "nobody"}, 404, "not_found", "no character 'nobody'"),
        ({"element_index": None}, 400, "invalid", "element_index"),
    ],
)
def test_a_refused_pin_stores_nothing(api, mixed, pin_story, media_root, change, status, code, words):
    payload = {
        "story_id": pin_story.pk,
        "source_clip_id": mixed.pk,
        "frame_timestamp": 1.0,
        "label": "x",
        "element_index": 1,
        **change,
    }
    response = api.post(PINS, payload, format="json")
    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["code"] == code and words in error["message"], error
    assert not PinnedCharacter.objects.exists() and pinned_files(media_root) == []


def test_a_taken_slot_a_foreign_clip_and_a_seventh_angle(api, mixed, good, pin_story, pin_admin, good_clip, media_root):
    first = api.post(
        PINS,
        {"story_id": pin_story.pk, "source_clip_id": mixed.pk, "frame_timestamp": 1.0, "element_index": 1},
        format="json",
    ).json()["character"]
    files_before = pinned_files(media_root)

    taken = api.post(
        PINS,
        {"story_id": pin_story.pk, "source_clip_id": good.pk, "frame_timestamp": 2.0, "element_index": 1},
        format="json",
    )
    assert taken.status_code == 409
    assert error_of(taken)["code"] == "element_taken"
    assert error_of(taken)["details"] == {"free_element_indexes": [2, 3, 4]}

    other_story = services.story_create(title="Other story", created_by=pin_admin)
    foreign = upload_clip(good_clip, other_story, pin_admin)
    for url, payload in [
        (PINS, {"story_id": pin_story.pk, "source_clip_id": foreign.pk, "frame_timestamp": 1.0, "element_index": 2}),
        (f"{PINS}/{first['id']}/angles", {"source_clip_id": foreign.pk, "frame_timestamp": 1.0}),
    ]:
        response = api.post(url, payload, format="json")
        assert response.status_code == 400
        assert error_of(response)["code"] == "clip_of_another_story"
    assert pinned_files(media_root) == files_before

    for k in range(6):
        assert (
            api.post(
                f"{PINS}/{first['id']}/angles",
                {"source_clip_id": good.pk, "frame_timestamp": 0.5 + k * 0.5},
                format="json",
            ).status_code
            == 201
        )
    seventh = api.post(
        f"{PINS}/{first['id']}/angles", {"source_clip_id": good.pk, "frame_timestamp": 4.0}, format="json"
    )
    assert seventh.status_code == 409 and error_of(seventh)["code"] == "too_many_angles"
    assert "already has 6 angles" in error_of(seventh)["message"]
    assert len(pinned_files(media_root)) == 7 and PinAngle.objects.count() == 6


def test_list_needs_a_story_id(api):
    response = api.get(PINS)
    assert response.status_code == 400 and error_of(response)["message"].startswith("story_id:")


# --- Who may call, and the flag ------------------------------------------------------------------------------


def test_contributors_get_403_and_anonymous_callers_401(mixed, pin_story, contributor, django_user_model, media_root):
    staff_without_permission = django_user_model.objects.create_user("stella", password="pw-123456", is_staff=True)
    payload = {"story_id": pin_story.pk, "source_clip_id": mixed.pk, "frame_timestamp": 1.0, "element_index": 1}
    for client in (bearer(contributor), bearer(staff_without_permission)):
        for response in (
            client.get(PINS, {"story_id": pin_story.pk}),
            client.post(PINS, payload, format="json"),
            client.delete(f"{PINS}?id=1"),
            client.patch(f"{PINS}/1", {}, format="json"),
            client.post(f"{PINS}/1/angles", {}, format="json"),
        ):
            assert response.status_code == 403, response.content
            assert "pin characters" in error_of(response)["message"]
    anonymous = APIClient()
    assert anonymous.post(PINS, payload, format="json").status_code == 401
    assert anonymous.get(f"/api/v1/stories/{pin_story.pk}/pinned-characters").status_code == 401
    assert not PinnedCharacter.objects.exists() and pinned_files(media_root) == []


def test_with_the_flag_off_every_endpoint_says_pinning_is_disabled(
    api, mixed, pin_story, pin_admin, contributor, media_root
):
    pin = pin_services.pin_create(
        story=pin_story, source_clip=mixed, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    PinningSettings.objects.filter(pk=1).update(enabled=False)

    responses = [
        api.get(PINS, {"story_id": pin_story.pk}),
        api.post(
            PINS,
            {"story_id": pin_story.pk, "source_clip_id": mixed.pk, "frame_timestamp": 2.0, "element_index": 2},
            format="json",
        ),
        api.delete(f"{PINS}?id={pin.pk}"),
        api.patch(f"{PINS}/{pin.pk}", {"is_active": False}, format="json"),
        api.post(f"{PINS}/{pin.pk}/angles", {"source_clip_id": mixed.pk, "frame_timestamp": 2.0}, format="json"),
        bearer(contributor).get(f"/api/v1/stories/{pin_story.pk}/pinned-characters"),
    ]
    for response in responses:
        assert response.status_code == 403, response.content
        assert error_of(response) == {
            "code": "pinning_disabled",
            "message": "Character pinning is disabled.",
            "details": {},
        }
    assert PinnedCharacter.objects.get().is_active and pinned_files(media_root) == [pin.frontal_image.name]
