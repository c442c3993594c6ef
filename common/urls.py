from django.contrib.auth import views as auth_views
from django.urls import path

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    # Django 5 logs out on POST only; the nav's "Log out" is a CSRF-protected form.
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
