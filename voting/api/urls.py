from django.urls import path

from . import lock, views

urlpatterns = [
    path("stories/<int:story_id>/characters/lock", lock.CharacterLockApi.as_view(), name="api-character-lock"),
    path(
        "stories/<int:story_id>/characters/submissions",
        views.StorySubmissionListCreateApi.as_view(),
        name="api-story-submissions",
    ),
    path(
        "characters/submissions/<int:submission_id>/vote",
        views.SubmissionVoteApi.as_view(),
        name="api-submission-vote",
    ),
    path(
        "stories/<int:story_id>/voting-sessions",
        views.StoryVotingSessionCreateApi.as_view(),
        name="api-story-voting-sessions",
    ),
    path("voting-sessions/<int:session_id>", views.VotingSessionDetailApi.as_view(), name="api-voting-session"),
    path(
        "voting-sessions/<int:session_id>/override",
        views.VotingSessionOverrideApi.as_view(),
        name="api-voting-session-override",
    ),
    path(
        "voting-sessions/<int:session_id>/cancel",
        views.VotingSessionCancelApi.as_view(),
        name="api-voting-session-cancel",
    ),
    path(
        "voting-sessions/<int:session_id>/runoff",
        views.VotingSessionRunoffApi.as_view(),
        name="api-voting-session-runoff",
    ),
]
