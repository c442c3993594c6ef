from django.urls import path

from . import views

urlpatterns = [
    path("stories/<int:story_id>/submit/", views.submission_create, name="submission-create"),
    path("submissions/<int:submission_id>/vote/", views.vote, name="submission-vote"),
    path("submissions/<int:submission_id>/withdraw/", views.submission_withdraw, name="submission-withdraw"),
]
