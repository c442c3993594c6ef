"""Becoming a contributor without an admin, in Chromium: sign up, follow the emailed link, log in, and ask for
credits from an empty wallet. The live server runs in this process, so the mail is in Django's locmem outbox."""
import re

from django.core import mail

from marketplace.models import CreditRequest

from . import browser_support as bs

pytestmark = bs.BROWSER_MARKS
media_root, media_through_our_view, browser, page = bs.media_root, bs.media_through_our_view, bs.browser, bs.page


def test_sign_up_verify_log_in_and_request_credits(live_server, page, settings):
    settings.CREDITS_SIGNUP_GRANT = 0
    base = live_server.url
    page.goto(base)
    with page.expect_navigation():
        page.click(".site-nav >> text=Sign up")
    page.fill("input[name=email]", "dana@example.org")
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password1]", "a-long-pass-phrase-9")
    page.fill("input[name=password2]", "a-long-pass-phrase-9")
    bs.screenshot(page, "accounts-signup.png")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Check your email"

    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["dana@example.org"]
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+/)", mail.outbox[0].body).group(1)
    page.goto(base + link)
    assert "dana@example.org" in page.locator("main").inner_text()
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url.startswith(f"{base}/accounts/login/")

    page.fill("input[name=login]", "dana")
    page.fill("input[name=password]", "a-long-pass-phrase-9")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url == f"{base}/"
    assert page.locator(".site-nav__user").inner_text() == "dana"

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
