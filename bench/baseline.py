"""The vote bench's baseline: the cheapest authenticated API request that still reads the database.

`GET /api/v1/bench/ping?session=<id>` goes through what a vote goes through before its own work —
gunicorn, the middleware, DRF with the same token authentication, permission, throttles, JSON
renderer and negotiation — then does one read on an index (the voter's row in the session's
one-vote-per-voter index, a prepared statement as the vote's is) and answers the user's id and that
count. Votes/s divided by pings/s in the same run says what the vote itself costs, whatever the
machine's load. Mounted only by bench/settings.py (ROOT_URLCONF), never by config.urls.
"""

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from common.db import prepared_statement_cursor
from common.negotiation import JSONOnlyNegotiation
from config.urls import handler400, handler403, handler404, handler500  # noqa: F401 -- the same error pages
from config.urls import urlpatterns as app_urlpatterns
from voting.models import Vote

_COUNT = f"SELECT count(*) FROM {Vote._meta.db_table} WHERE session_id = %(session)s AND voter_id = %(voter)s"  # noqa: S608


class PingApi(APIView):
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    parser_classes: list = []
    content_negotiation_class = JSONOnlyNegotiation

    def get(self, request):
        with prepared_statement_cursor() as cursor:
            cursor.execute(_COUNT, {"session": int(request.GET.get("session", 0)), "voter": request.user.pk})
            (votes,) = cursor.fetchone()
        return Response({"user_id": request.user.pk, "votes": votes})


# First: the vote (first in config.urls) then tries one pattern more than in production, and the
# baseline never pays more for URL matching than the vote does.
urlpatterns = [path("api/v1/bench/ping", PingApi.as_view(), name="bench-ping"), *app_urlpatterns]
