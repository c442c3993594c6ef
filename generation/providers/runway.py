"""Runway through the official `runwayml` SDK: image_to_video.create, tasks.retrieve (polled), tasks.delete.

Runway sends no webhooks, so jobs are polled. We poll ourselves rather than use the SDK's
`wait_for_task_output()`, which keeps waiting on a CANCELLED task; here a CANCELLED task ends the job.
"""

from __future__ import annotations

from pathlib import Path

import runwayml
from django.conf import settings

from .base import (
    ProviderFailed,
    ProviderRequest,
    ProviderStatus,
    SubmissionOutcomeUnknown,
    TransientProviderError,
    VerifiedDelivery,
    WebhookRejected,
    download_video,
    per_process_client,
    short,
)

STATES = {
    "PENDING": "queued",
    "THROTTLED": "queued",
    "RUNNING": "processing",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}
# The wire body (what the schema and the job keep) -> the SDK's keyword arguments.
KWARGS = {
    "model": "model",
    "promptImage": "prompt_image",
    "promptText": "prompt_text",
    "ratio": "ratio",
    "duration": "duration",
    "seed": "seed",
    "contentModeration": "content_moderation",
}


@per_process_client
def _client(key: str, base_url: str) -> runwayml.RunwayML:
    return runwayml.RunwayML(api_key=key, base_url=base_url, timeout=30.0, max_retries=2)


def _error_text(exc: runwayml.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("error") or body.get("message") or exc.message
        issues = body.get("issues")
        if isinstance(issues, list) and issues:
            message = f"{message}: " + "; ".join(
                f"{'.'.join(str(p) for p in i.get('path', []))}: {i.get('message')}".lstrip(": ")
                if isinstance(i, dict)
                else str(i)
                for i in issues
            )
        return short(message)
    return short(exc.message)


class RunwayProvider:
    name = "runway"
    webhooks = False

    def __init__(self) -> None:
        self.client = _client(settings.RUNWAYML_API_SECRET, settings.RUNWAYML_BASE_URL)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except runwayml.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code == 429:
                raise TransientProviderError(f"Runway answered {exc.status_code}: {_error_text(exc)}") from exc
            raise ProviderFailed(f"Runway: {_error_text(exc)}") from exc
        except runwayml.APIConnectionError as exc:  # includes APITimeoutError
            raise TransientProviderError(f"Runway could not be reached: {exc}") from exc

    def submit(self, request: ProviderRequest) -> str:
        kwargs = {KWARGS[k]: v for k, v in request.arguments.items()}
        # No SDK retries for the one call that makes (and bills) a clip: a resend could make it twice.
        client = self.client.with_options(max_retries=0)
        try:
            task = self._call(client.image_to_video.create, **kwargs)
        except TransientProviderError as exc:
            if isinstance(exc.__cause__, runwayml.APITimeoutError):
                raise SubmissionOutcomeUnknown(f"Runway did not answer the submission: {exc.__cause__}") from exc
            raise
        return task.id

    def status(self, model_id: str, request_id: str) -> ProviderStatus:
        task = self._call(self.client.tasks.retrieve, request_id)
        state = STATES.get(task.status, "processing")
        error = None
        if state == "failed":
            error = short(getattr(task, "failure", "") or "Runway failed the task.")
        elif state == "cancelled":
            error = "Runway cancelled the task."
        return ProviderStatus(state, error=error)

    def result(self, model_id: str, request_id: str, *, completed: bool = False) -> dict:
        task = self._call(self.client.tasks.retrieve, request_id)
        if task.status != "SUCCEEDED":
            reason = getattr(task, "failure", "") or task.status.lower()
            raise ProviderFailed(f"Runway's task did not succeed: {short(reason)}")
        if not task.output:
            raise ProviderFailed("Runway finished the task but returned no video.")
        return {"video": {"url": task.output[0]}}

    def download(self, result: dict, dest_dir: Path) -> Path:
        return download_video(result["video"]["url"], dest_dir, "Runway")

    def cancel(self, model_id: str, request_id: str) -> None:
        self._call(self.client.tasks.delete, request_id)

    def verify_webhook(self, headers, body: bytes) -> VerifiedDelivery:
        raise WebhookRejected("Runway sends no webhooks.")
