"""The voting API: thin views over voting.services and voting.selectors.

Services raise ServiceError subclasses; common.exceptions.api_exception_handler turns them into the
common error body, so nothing here catches them.
"""

from typing import cast

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from characters.models import Story
from common.api_schema import ErrorSerializer, error_responses
from common.exceptions import NotFound
from common.negotiation import JSONOnlyNegotiation
from voting import selectors, services
from voting.models import VotingSession

from .serializers import (
    SessionCancelSerializer,
    SessionOverrideSerializer,
    SessionStartSerializer,
    SessionStatusSerializer,
    SubmissionCreateSerializer,
    SubmissionSerializer,
    VoteResponseSerializer,
)

TAG = "voting"


def _story_or_404(story_id: int) -> Story:
    story = Story.objects.filter(pk=story_id).first()
    if story is None:
        raise NotFound(f"There is no story {story_id}.")
    return story


def _session_or_404(session_id: int) -> VotingSession:
    session = VotingSession.objects.filter(pk=session_id).first()
    if session is None:
        raise NotFound(f"There is no voting session {session_id}.")
    return session


def _submissions_body(submissions) -> list[dict]:
    open_sessions = selectors.open_session_ids(s.pk for s in submissions)
    return SubmissionSerializer(submissions, many=True, context={"open_sessions": open_sessions}).data  # type: ignore[return-value]  # many: a list


def _status_body(session: VotingSession) -> dict:
    return SessionStatusSerializer(selectors.session_status(session)).data


class StorySubmissionListCreateApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        tags=[TAG],
        operation_id="story_submissions_list",
        summary="A story's character submissions, newest first within each slot",
        responses={200: SubmissionSerializer(many=True), **error_responses(404)},
    )
    def get(self, request, story_id: int):
        story = _story_or_404(story_id)
        return Response(_submissions_body(list(selectors.story_submissions(story))))

    @extend_schema(
        tags=[TAG],
        operation_id="story_submissions_create",
        summary="Propose a design for a character of the story from its candidate frames",
        description="When this makes enough active submissions for the character, a voting session opens and "
        "`voting_session_id` names it.",
        request=SubmissionCreateSerializer,
        responses={201: SubmissionSerializer, **error_responses(400, 401, 404, 429)},
    )
    def post(self, request, story_id: int):
        story = _story_or_404(story_id)
        serializer = SubmissionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        submission = services.submission_create(story=story, submitter=request.user, **serializer.validated_data)
        return Response(_submissions_body([submission])[0], status=status.HTTP_201_CREATED)


class SubmissionVoteApi(APIView):
    """The hot path: no request body, no serializer, JSON only; the service does the work."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    parser_classes: list = []
    content_negotiation_class = JSONOnlyNegotiation

    @extend_schema(
        tags=[TAG],
        operation_id="submission_vote",
        summary="Vote for a submission in its open session (one vote per voter per session)",
        request=None,
        responses={
            200: VoteResponseSerializer,
            **error_responses(401, 403, 404, 429),
            409: OpenApiResponse(
                ErrorSerializer,
                description="Already voted in this session (`already_voted`), the session is closed "
                "(`session_closed`), or the submission is not in an open session (`no_open_session`).",
            ),
        },
    )
    def post(self, request, submission_id: int):
        result = services.vote_cast(submission_id=submission_id, voter=request.user)
        return Response({"success": True, "new_vote_count": result.new_vote_count})


class VotingSessionDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=[TAG],
        operation_id="voting_session_status",
        summary="A voting session's live tallies, time remaining and result",
        responses={200: SessionStatusSerializer, **error_responses(404, 429)},
    )
    def get(self, request, session_id: int):
        return Response(_status_body(_session_or_404(session_id)))


class StoryVotingSessionCreateApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        tags=[TAG],
        operation_id="story_voting_session_start",
        summary="Start a vote for a character (its group, or a slot) with its active submissions (admins)",
        request=SessionStartSerializer,
        responses={
            201: SessionStatusSerializer,
            **error_responses(400, 401, 403, 404),
            409: OpenApiResponse(
                ErrorSerializer,
                description="A vote is already open for this character (`session_exists`); `error.details.session_id` "
                "names it.",
            ),
        },
    )
    def post(self, request, story_id: int):
        story = _story_or_404(story_id)
        serializer = SessionStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        session = services.session_start(
            story=story,
            character_slot=serializer.validated_data["character_slot"],
            group_id=serializer.validated_data["group_id"],
            duration_hours=serializer.validated_data.get("duration_hours"),
            started_by=request.user,
        )
        return Response(_status_body(session), status=status.HTTP_201_CREATED)


_ADMIN_ERRORS = {
    **error_responses(400, 401, 403, 404),
    409: OpenApiResponse(ErrorSerializer, description="The session has already ended (`session_closed`)."),
}


class VotingSessionOverrideApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        tags=[TAG],
        operation_id="voting_session_override",
        summary="Name the winner of an open or tied session, with a recorded reason (admins)",
        request=SessionOverrideSerializer,
        responses={200: SessionStatusSerializer, **_ADMIN_ERRORS},
    )
    def post(self, request, session_id: int):
        _session_or_404(session_id)
        serializer = SessionOverrideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        session = services.session_override(
            session_id=session_id,
            submission_id=serializer.validated_data["submission_id"],
            reason=serializer.validated_data["reason"],
            admin=request.user,
        )
        return Response(_status_body(session))


class VotingSessionCancelApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        tags=[TAG],
        operation_id="voting_session_cancel",
        summary="Cancel an open session with no winner (admins)",
        request=SessionCancelSerializer,
        responses={200: SessionStatusSerializer, **_ADMIN_ERRORS},
    )
    def post(self, request, session_id: int):
        _session_or_404(session_id)
        serializer = SessionCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        session = services.session_cancel(
            session_id=session_id, reason=serializer.validated_data["reason"], admin=request.user
        )
        return Response(_status_body(session))


class VotingSessionRunoffApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        tags=[TAG],
        operation_id="voting_session_runoff",
        summary="Send the leaders tied in an open or tied session to a runoff session (admins)",
        description="Ends this session and answers with the new runoff session's status; its `runoff_of` "
        "is this session.",
        request=None,
        responses={201: SessionStatusSerializer, **_ADMIN_ERRORS},
    )
    def post(self, request, session_id: int):
        _session_or_404(session_id)
        ended = services.session_start_runoff(session_id=session_id, admin=request.user)
        runoff = cast(VotingSession, selectors.runoff_session_of(ended))  # just opened
        return Response(_status_body(runoff), status=status.HTTP_201_CREATED)
