"""The create page in a real browser: the cost follows what the contributor picks, before anything is spent."""
import pytest

from characters.models import PinningSettings
from generation.models import GenerationJob

from . import browser_support as bs
from .generation_support import offline_provider, pinned_story  # noqa: F401 -- the fixture

pytestmark = [*bs.BROWSER_MARKS, pytest.mark.usefixtures("offline_provider")]
# Shared fixtures (see tests/browser_support.py): bound here so pytest finds them for this module.
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
    offer = page.locator('[data-role="reference-cost"]')
    assert (cost.inner_text(), mode.inner_text()) == ("$0.350", "image-to-video")
    assert offer.inner_text() == "$0.560 for 5 s, instead of $0.350"

    page.select_option("#id_duration", "10")  # twice as long: every price doubles
    page.wait_for_function("() => document.querySelector('[data-role=\"cost\"]').textContent === '$0.700'")
    assert offer.inner_text() == "$1.120 for 10 s, instead of $0.700"

    page.check("input[name=with_pins]")  # ask for the pinned character: Kling O1, at its price
    page.wait_for_function("() => document.querySelector('[data-role=\"mode\"]').textContent === 'reference-to-video'")
    assert cost.inner_text() == "$1.120"
    assert not GenerationJob.objects.exists()  # quoting spends nothing
    assert page.js_errors == []
