"""Becoming a contributor without an admin, in Chromium: sign up, follow the emailed link, log in, ask for
credits from an empty wallet, and upload a first clip (an AVI) whose extraction the page follows live. The
live server runs in this process, so the mail is in Django's locmem outbox and the background threads of
the embedded default run here too."""

import re

from django.core import mail

from characters.clips import services as clip_services
from characters.models import Clip
from demo import clips
from marketplace.models import CreditRequest
from tests.characters.clips import test_background_tasks as background
from tests.support import browser as bs

pytestmark = bs.BROWSER_MARKS
media_root, media_through_our_view, browser, page = bs.media_root, bs.media_through_our_view, bs.browser, bs.page
background_mode, hold, WAIT_SECONDS = background.background_mode, background.hold, background.WAIT_SECONDS


def sign_up_and_log_in(page, base: str, username: str, email: str, password: str) -> None:
    """Sign up on the site, follow the link of the verification email, log in."""
    page.goto(base)
    with page.expect_navigation():
        page.click(".site-nav >> text=Sign up")
    page.fill("input[name=email]", email)
    page.fill("input[name=username]", username)
    page.fill("input[name=password1]", password)
    page.fill("input[name=password2]", password)
    bs.screenshot(page, "accounts-signup.png")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Check your email"

    assert len(mail.outbox) == 1 and mail.outbox[0].to == [email]
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+/)", mail.outbox[0].body).group(1)
    page.goto(base + link)
    assert email in page.locator("main").inner_text()
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url.startswith(f"{base}/accounts/login/")

    page.fill("input[name=login]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url == f"{base}/"
    assert page.locator(".site-nav__user").inner_text() == username


def test_sign_up_verify_log_in_and_request_credits(live_server, page, settings):
    settings.CREDITS_SIGNUP_GRANT = 0
    base = live_server.url
    sign_up_and_log_in(page, base, "dana", "dana@example.org", "a-long-pass-phrase-9")

    # An empty wallet says how to get credits, and the request goes to the admins.
    page.goto(f"{base}/me/wallet/")
    assert page.locator(".balance-card__value").inner_text() == "0"
    assert "How to get credits" in page.locator("#get-credits").inner_text()
    with page.expect_navigation():
        page.click("#get-credits >> text=Request credits")
    page.fill("input[name=amount]", "80")
    page.fill("textarea[name=reason]", "A pack of 10 uses of Commander Eileen for my story")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url == f"{base}/me/wallet/"
    assert "Your request was sent to the admins" in page.locator(".messages").inner_text()
    assert "waiting for an answer" in page.locator("#get-credits").inner_text()
    bs.screenshot(page, "accounts-wallet-request.png")
    assert not page.js_errors

    credit_request = CreditRequest.objects.get()
    assert (credit_request.user.username, credit_request.amount, credit_request.status) == ("dana", 80, "open")


def test_a_newcomer_uploads_an_avi_and_watches_it_become_candidate_frames(
    live_server, page, background_mode, hold, monkeypatch, good_clip, tmp_path
):
    avi = clips.avi_mpeg4(good_clip, tmp_path / "first-clip.avi")  # MPEG-4 Part 2, as old cameras write
    real_extract = clip_services.extract_candidates

    def held_extract(path, *, progress, **kwargs):  # a long clip, stopped part way until the page has shown it
        def report(percent):
            progress(percent)
            if percent > 0:
                hold.wait(WAIT_SECONDS)

        return real_extract(path, progress=report, **kwargs)

    monkeypatch.setattr(clip_services, "extract_candidates", held_extract)
    base = live_server.url
    sign_up_and_log_in(page, base, "erin", "erin@example.org", "a-long-pass-phrase-9")
    page.fill("#id_title", "Erin's First Story")
    with page.expect_navigation():
        page.click("text=Create story")

    page.set_input_files("input[type=file]", str(avi))
    with page.expect_navigation():  # returns at once: the work runs in the server's background threads
        page.click("text=Upload clip")
    clip = Clip.objects.get(story__title="Erin's First Story")
    assert "extracting frames — progress below" in page.locator(".messages").inner_text()
    progress = f"#clip-{clip.pk} .progress"
    page.wait_for_selector(f"{progress}:not([aria-valuenow='0'])", timeout=WAIT_SECONDS * 1000)
    assert 0 < int(page.locator(progress).get_attribute("aria-valuenow")) < 100
    bs.screenshot(page, "newcomer-extracting.png")

    hold.set()
    page.wait_for_selector(f"#clip-{clip.pk}[data-status=ready]", timeout=WAIT_SECONDS * 1000)
    clip.refresh_from_db()
    assert clip.status == Clip.Status.READY and clip.container == "avi" and clip.playable_video
    widths = bs.wait_for_images(page, f"#clip-{clip.pk} .frame-grid img")
    assert widths and len(widths) == clip.candidates.count()
    bs.screenshot(page, "newcomer-candidates.png")
    assert not page.js_errors
