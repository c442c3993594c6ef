from allauth.account import views as account_views
from django.urls import include, path
from django.views.decorators.http import require_POST

urlpatterns = [
    # allauth's log-in and log-out under the names the templates and LOGIN_URL use. Log-out takes a POST only
    # (the nav's "Log out" is a CSRF-protected form): a link or an <img> cannot log anyone out.
    path("accounts/login/", account_views.login, name="login"),
    path("accounts/logout/", require_POST(account_views.logout), name="logout"),
    # Sign-up, email verification, password reset (allauth's names: account_signup, account_login...).
    path("accounts/", include("allauth.urls")),
]
