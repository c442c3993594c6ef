"""The create page in a real browser: the cost follows what the contributor picks, before anything is spent."""

import pytest

from characters.models import Character, PinningSettings
from generation.models import GenerationJob
from marketplace.models import LicenseUse
from tests.support import browser as bs
from tests.support.factories import StoryFactory, UserFactory
from tests.support.generation import canonical_character, licensee_of, offline_provider, pinned_story  # noqa: F401

pytestmark = [*bs.BROWSER_MARKS, pytest.mark.usefixtures("offline_provider")]
# Shared fixtures (see tests/support/browser.py): bound here so pytest finds them for this module.
media_root, media_through_our_view, browser, page = bs.media_root, bs.media_through_our_view, bs.browser, bs.page

PASSWORD = "pw-generation-123"


def test_cost_and_mode_follow_the_duration_and_the_pins_toggle(live_server, page, good_clip):
    world = pinned_story(good_clip, [(1, 0)])
    PinningSettings.objects.filter(pk=PinningSettings.SINGLETON_PK).update(auto_switch_model=False)
    world.contributor.set_password(PASSWORD)
    world.contributor.save()
    bs.log_in(page, live_server.url, world.contributor.username, PASSWORD)
    page.goto(f"{live_server.url}/stories/{world.story.pk}/create/")

    cost, mode = page.locator('[data-role="cost"]'), page.locator('[data-role="mode"]')
    offer, summary = page.locator('[data-role="reference-cost"]'), page.locator('[data-role="summary"]')
    # an offline preview costs nothing here, and says what fal would charge
    assert (cost.inner_text(), mode.inner_text()) == ("$0.000", "image-to-video")
    assert offer.inner_text() == "$0.560 for 5 s, instead of $0.350"
    assert summary.inner_text().endswith("On fal this would cost $0.35.")

    page.select_option("#id_duration", "10")  # twice as long: every price doubles
    page.wait_for_function("() => document.querySelector('[data-role=\"summary\"]').textContent.endsWith('$0.70.')")
    assert offer.inner_text() == "$1.120 for 10 s, instead of $0.700"

    page.check("input[name=with_sound]")  # sound doubles the v2.6 price
    page.wait_for_function("() => document.querySelector('[data-role=\"summary\"]').textContent.endsWith('$1.40.')")
    page.uncheck("input[name=with_sound]")

    page.check("input[name=with_pins]")  # ask for the pinned character: Kling O1, at its price
    page.wait_for_function("() => document.querySelector('[data-role=\"mode\"]').textContent === 'reference-to-video'")
    assert cost.inner_text() == "$0.000" and summary.inner_text().endswith("On fal this would cost $1.12.")
    assert not GenerationJob.objects.exists()  # quoting spends nothing
    assert page.js_errors == []


def test_picking_another_model_re_prices_from_the_server_and_a_model_of_another_mode_is_refused(
    live_server, page, good_clip, settings
):
    """With a fal key every fal model is offered; each pick is quoted by the server (no price table in the page)."""
    settings.GENERATION_PROVIDER, settings.FAL_KEY = "auto", "a-key-nothing-is-sent-with"
    user = UserFactory(username="maker")
    story = StoryFactory(title="Hangar", created_by=user)
    canonical_character(story, user, good_clip)
    user.set_password(PASSWORD)
    user.save()
    bs.log_in(page, live_server.url, user.username, PASSWORD)
    page.goto(f"{live_server.url}/stories/{story.pk}/create/")

    cost, model, summary = (page.locator(f'[data-role="{role}"]') for role in ("cost", "model", "summary"))
    assert (cost.inner_text(), model.inner_text()) == ("$0.350", "fal-ai/kling-video/v2.6/pro/image-to-video")
    offered = page.locator("#id_model_id option").evaluate_all("options => options.map(o => o.value)")
    assert {"fal-ai/kling-video/v2.1/pro/image-to-video", "fal-ai/kling-video/v3/pro/image-to-video"} <= set(offered)

    def shows(role: str, text: str) -> None:
        page.wait_for_function(
            '([role, text]) => document.querySelector(`[data-role="${role}"]`).textContent === text', arg=[role, text]
        )

    page.select_option("#id_model_id", "fal-ai/kling-video/v2.1/pro/image-to-video")  # $0.098/s
    shows("cost", "$0.490")
    assert model.inner_text() == "fal-ai/kling-video/v2.1/pro/image-to-video"
    assert summary.inner_text() == "Kling v2.1 Pro image-to-video on fal, 5 s: $0.49."

    page.select_option("#id_model_id", "fal-ai/kling-video/v3/pro/image-to-video")  # $0.224/s
    shows("cost", "$1.120")
    page.select_option("#id_duration", "10")
    shows("cost", "$2.240")

    page.select_option("#id_model_id", "fal-ai/kling-video/v2.6/pro/text-to-video")  # not this request's mode
    shows("cost", "—")
    assert "makes text-to-video, but this request is image-to-video" in summary.inner_text()
    assert summary.get_attribute("data-refused") == "true"

    page.select_option("#id_model_id", "")  # the mode's default again, for the 10 s picked
    shows("cost", "$0.700")
    assert summary.get_attribute("data-refused") is None
    assert not GenerationJob.objects.exists()  # quoting spends nothing
    assert page.js_errors == []


def test_a_licensed_character_of_another_story_is_picked_and_its_use_spent(live_server, page, good_clip):
    owner = UserFactory(username="owner")
    character = canonical_character(
        StoryFactory(title="Deep Field", created_by=owner), owner, good_clip, allow_licensing=True
    )
    Character.objects.filter(pk=character.pk).update(name="Commander Eileen")
    buyer, story, license = licensee_of(character)  # a pack of 10
    own = canonical_character(story, buyer, good_clip)  # the buyer's story has its own character, the default
    buyer.set_password(PASSWORD)
    buyer.save()
    bs.log_in(page, live_server.url, buyer.username, PASSWORD)
    page.goto(f"{live_server.url}/stories/{story.pk}/create/")

    select = page.locator("#id_character_id")
    assert select.input_value() == own.character_id
    options = select.locator("option").all_inner_texts()
    assert f"{own.name} — you created it" in options
    assert "Commander Eileen — licensed, 10 uses left" in options
    select.select_option(character.character_id)
    page.wait_for_function(
        "() => document.querySelector('[data-role=\"character-link\"]').textContent === 'Commander Eileen'"
    )
    page.fill("#id_prompt", "She lands on the far side of the moon")
    with page.expect_navigation():
        page.click("#generate-form button[type=submit]")

    job = GenerationJob.objects.get()
    assert page.url.endswith(job.get_absolute_url())
    assert (job.story, job.character, job.mode) == (story, character, "image-to-video")
    license.refresh_from_db()
    assert license.uses_remaining == 9 and LicenseUse.objects.get().job_ref == job.job_id
    assert page.js_errors == []
