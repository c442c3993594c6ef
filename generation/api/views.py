"""Generation over HTTP: thin views over generation.services, quotes and webhooks."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from characters.models import Story
from common.api_schema import error_responses
from common.exceptions import NotFound, ServiceError
from common.throttling import ScopedRateThrottle
from generation import quotes, selectors, services, webhooks
from generation.models import GenerationJob
from generation.providers import WebhookRejected, get_provider, offered_models
from generation.webhooks import WebhookKeysUnavailable

from .serializers import (
    GenerateAcceptedSerializer,
    GenerateRequestSerializer,
    GenerationJobSerializer,
    OfferedModelSerializer,
    QuoteSerializer,
)


def _story(story_id: int) -> Story:
    story = Story.objects.filter(pk=story_id).first()
    if story is None:
        raise NotFound(f"Story {story_id} does not exist.")
    return story


def _target_story(request, data) -> Story:
    """The story of the request: the one named, or (the seed's body, no story_id) the character's own."""
    if data.get("story_id") is not None:
        return _story(data["story_id"])
    return quotes.generation_target_story(requester=request.user, character_id=data.get("character_id") or None)


def _job_for(request, job_id: str) -> GenerationJob:
    job = selectors.job_visible_to(request.user, job_id)
    if job is None:
        raise NotFound(f"There is no generation job '{job_id}' of yours.")
    return job


class GenerationCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=GenerateRequestSerializer,
        responses={202: GenerateAcceptedSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Queue a clip. With active pins: Kling O1 reference-to-video (automatically, or, when an admin "
        "turned automatic model switching off, only with `use_pins: true`); with a canonical character: "
        "image-to-video with its DNA; `use_pins: false` or nothing locked: text-to-video. A repeated "
        "`idempotency_key` returns the same job.",
    )
    def post(self, request):
        serializer = GenerateRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = services.generation_create(
            requester=request.user,
            story=_target_story(request, data),
            prompt=data["prompt"],
            duration=data["duration"],
            aspect_ratio=data["aspect_ratio"],
            use_pins=data["use_pins"],
            character_id=data.get("character_id") or None,
            group_id=data.get("group_id"),
            idempotency_key=data.get("idempotency_key", ""),
            with_audio=data["with_sound"],
            model_id=data.get("model_id") or None,
            video_element_pin=data["video_element_pin"],
            style_reference_kinds=data["style_reference_kinds"],
            style_images=data["style_images"],
        )
        status_url = reverse("api-generation-job", args=[job.job_id], request=request)
        # The seed's answer says `processing` for an accepted job; `state` keeps the finer one.
        body = {
            "job_id": job.job_id,
            "status": "processing",
            "state": job.status,
            "estimated_time": job.estimated_seconds,
            "mode": job.mode,
            "cost_usd": job.cost_usd,
            "would_cost_usd": job.would_cost_usd,
            "provider": job.provider,
            "status_url": status_url,
        }
        return Response(
            GenerateAcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED, headers={"Location": status_url}
        )


class GenerationQuoteApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=GenerateRequestSerializer,
        responses={200: QuoteSerializer, **error_responses(400, 401, 404)},
        description="What a generate request would run and cost, without spending anything: the provider, the "
        "model and the exact `arguments` that would be sent, what it costs (0 for an offline preview) and what it "
        "would cost on fal, and the pins it would leave out, with why. Style references (`style_reference_kinds`, "
        "multipart `style_images`) appear in `arguments.image_urls` and `style_references`; uploads are checked "
        "(a 400 naming a bad file) and nothing is stored; those that do not fit beside the pins are in "
        "`left_out_style_references`.",
    )
    def post(self, request):
        serializer = GenerateRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        quote = quotes.generation_quote(
            story=_target_story(request, data),
            prompt=data["prompt"],
            duration=data["duration"],
            aspect_ratio=data["aspect_ratio"],
            use_pins=data["use_pins"],
            character_id=data.get("character_id"),
            group_id=data.get("group_id"),
            with_audio=data["with_sound"],
            model_id=data.get("model_id") or None,
            video_element_pin=data["video_element_pin"],
            style_reference_kinds=data["style_reference_kinds"],
            style_images=data["style_images"],
        )
        return Response(
            QuoteSerializer(
                {
                    "mode": quote.plan.mode,
                    "model": quote.plan.model_id,
                    "provider": quote.provider,
                    "model_id": quote.plan.model_id,
                    "arguments": quote.plan.arguments,
                    "offline_preview": quote.offline_preview,
                    "summary": quote.summary,
                    "with_sound": quote.plan.with_audio,
                    "cost_usd": quote.cost_usd,
                    "would_cost_usd": quote.would_cost_usd,
                    "left_out_elements": quote.left_out,
                    "style_references": [
                        {"position": n, "source": r.source, "kind": r.kind, "label": r.label, "url": r.url}
                        for n, r in enumerate(quote.style_references, start=1)
                    ],
                    "left_out_style_references": quote.plan.left_out_styles,
                    "prompt_used": quote.plan.prompt_used,
                    "pinned_elements": [{"element_index": p.element_index, "label": p.label} for p in quote.pins],
                    "available_pinned_elements": [
                        {"element_index": p.element_index, "label": p.label} for p in quote.available_pins
                    ],
                    "pins_on_request": quote.pins_on_request,
                    "reference_cost_usd": quote.reference_cost_usd,
                    "character_id": quote.character.character_id if quote.character else None,
                    "character_choice": quote.character_choice,
                    "character_ids": [c.character_id for c in quote.characters],
                    "notes": quote.plan.notes,
                    "video_element": quote.video_element,
                    "video_element_choices": quote.video_choices,
                }
            ).data
        )


class GenerationJobDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: GenerationJobSerializer, **error_responses(401, 404)})
    def get(self, request, job_id: str):
        job = services.generation_refresh(job=_job_for(request, job_id))
        return Response(GenerationJobSerializer(job, context={"request": request}).data)


class GenerationJobCancelApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: GenerationJobSerializer, **error_responses(401, 403, 404, 409)})
    def post(self, request, job_id: str):
        job = services.generation_cancel(job=_job_for(request, job_id), user=request.user)
        return Response(GenerationJobSerializer(job, context={"request": request}).data)


class GenerationModelListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={200: OfferedModelSerializer(many=True), **error_responses(401)},
        description="The models a generate request may name (`model_id`): those whose provider has a key here, and "
        "each mode's default model (an offline preview, free, when its provider has no key). Each with its provider, "
        "what it takes (mode, reference images, durations, aspect ratios, sound) and its price per second.",
    )
    def get(self, request):
        return Response(OfferedModelSerializer(offered_models(), many=True).data)


def _rejected(exc: WebhookRejected) -> Response:
    return Response({"error": {"code": exc.code, "message": str(exc), "details": {}}}, status=exc.status_code)


class _SignedWebhookReceiveApi(APIView):
    """A provider's completion callback, authenticated by its signature, not by a user."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Anyone can post here: a rate per source address (common.client_ip), checked before the body is read.
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "webhooks"
    provider = ""

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(description="Accepted (or a replay / unknown request: nothing changed)."),
            401: OpenApiResponse(description="Signature missing, wrong or stale."),
            **error_responses(413, 429, 503),
        },
    )
    def post(self, request):
        try:
            delivery = get_provider(self.provider).verify_webhook(request.headers, request.body)
        except WebhookKeysUnavailable as exc:
            # Not the sender's fault: fal retries a delivery that was not accepted.
            raise ServiceError(
                str(exc), code="keys_unavailable", status_code=503, retry_after=exc.retry_after
            ) from None
        except WebhookRejected as exc:
            return _rejected(exc)
        outcome = webhooks.webhook_received(
            provider=self.provider,
            delivery=delivery,
            job_id=request.query_params.get("job", ""),  # our own URL's, not covered by the signature
        )
        return Response({"ok": True, "outcome": outcome})


class FalWebhookReceiveApi(_SignedWebhookReceiveApi):
    """fal's completion callback: Ed25519-signed (generation/webhooks.py)."""

    provider = "fal"


class ReplicateWebhookReceiveApi(_SignedWebhookReceiveApi):
    """Replicate's "completed" webhook: HMAC-signed with REPLICATE_WEBHOOK_SECRET, fresh, each webhook-id once."""

    provider = "replicate"


class LumaCallbackReceiveApi(APIView):
    """Luma's callback. Unsigned, so its body is never believed: it only makes us ask Luma again with our key."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Unsigned and open to anyone: the same per-address rate as the signed webhooks.
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "webhooks"

    @extend_schema(request=None, responses={200: OpenApiResponse(description="Luma is asked again (or nothing).")})
    def post(self, request):
        body = request.data if isinstance(request.data, dict) else {}
        outcome = webhooks.provider_callback(
            provider="luma", job_id=request.query_params.get("job", ""), request_id=str(body.get("id") or "")
        )
        return Response({"ok": True, "outcome": outcome})
