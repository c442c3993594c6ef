"""A fake Replicate API on loopback, for the real `replicate` client (replicate.Client(base_url=...)).

    POST /v1/models/{owner}/{name}/predictions  {input, webhook, webhook_events_filter} -> 201 prediction
    GET  /v1/predictions/{id}                   -> starting | processing | succeeded (output: the video URL) | ...
    POST /v1/predictions/{id}/cancel            -> the prediction, canceled

`Authorization: Bearer <token>` is required (401 otherwise). An `input` that breaks the model's schema is answered
422 in Replicate's problem-details shape, `{"title", "detail", "status", "invalid_fields"}`. `signed_delivery()`
makes the webhook Replicate would send (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature =
"v1,<base64 HMAC-SHA256 of id.timestamp.body>" keyed with the base64 part of the whsec_ secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from tests.support.fake_provider import FakeJob, FakeProviderServer, Received

EVENTS = {"start", "output", "logs", "completed"}


def make_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class FakeReplicate(FakeProviderServer):
    default_script = ["starting", "processing", "succeeded"]

    def __init__(self, *, webhook_secret: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.webhook_secret = webhook_secret

    def is_submission(self, path: str) -> bool:
        return path.startswith("/v1/models/") and path.endswith("/predictions")

    def _problem(self, status: int, title: str, detail: str, **extra) -> tuple[int, dict]:
        return status, {"title": title, "detail": detail, "status": status, **extra}

    def prediction(self, job: FakeJob, state: str | None = None) -> dict:
        state = state or job.state
        return {
            "id": job.id,
            "model": job.model,
            "version": "hidden",
            "status": state,
            "input": job.body["input"],
            "output": self.video_url(job.id) if state == "succeeded" else None,
            "logs": "",
            "error": "The model failed (fake)." if state == "failed" else None,
            "metrics": {},
            "created_at": job.created_at,
            "started_at": None,
            "completed_at": None,
            "urls": {
                "get": f"{self.base_url}/v1/predictions/{job.id}",
                "cancel": f"{self.base_url}/v1/predictions/{job.id}/cancel",
            },
        }

    def route(self, method: str, path: str, received: Received, auth_ok: bool) -> tuple[int, Any]:
        if not auth_ok:
            return self._problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        parts = path.strip("/").split("/")
        if method == "POST" and self.is_submission(path):
            model = "/".join(parts[2:4])
            body = received.json() or {}
            errors = self.validate(model, body.get("input"))
            if errors is None:
                return self._problem(404, "Not found", f"The model {model} does not exist")
            events = body.get("webhook_events_filter")
            if events is not None and not set(events) <= EVENTS:
                errors = [*errors, {"loc": ["body", "webhook_events_filter"], "msg": "unknown event"}]
            if errors:
                fields = [{"field": ".".join(e["loc"][1:]), "message": e["msg"]} for e in errors]
                return self._problem(
                    422,
                    "Input validation failed",
                    "; ".join(f"{f['field']}: {f['message']}" for f in fields),
                    invalid_fields=fields,
                )
            job = self.new_job(model, body)
            return 201, self.prediction(job, "starting")
        if len(parts) >= 3 and parts[:2] == ["v1", "predictions"]:
            job = self.jobs.get(parts[2])
            if job is None:
                return self._problem(404, "Not found", "The requested resource could not be found.")
            if method == "GET" and len(parts) == 3:
                return 200, self.prediction(job, job.read())
            if method == "POST" and parts[3:] == ["cancel"]:
                if job.state not in ("succeeded", "failed", "canceled"):
                    job.state_override = "canceled"
                return 200, self.prediction(job)
        return self._problem(404, "Not found", f"No route {method} {path}")

    def signed_delivery(
        self,
        job_id: str,
        *,
        state: str = "succeeded",
        webhook_id: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> tuple[dict, bytes]:
        """(headers, body) of the webhook Replicate sends when the prediction ends."""
        with self.lock:
            body = json.dumps(self.prediction(self.jobs[job_id], state)).encode()
        webhook_id = webhook_id or f"msg_{secrets.token_hex(12)}"
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": stamp,
            "webhook-signature": sign(secret or self.webhook_secret, webhook_id, stamp, body),
        }
        return headers, body
