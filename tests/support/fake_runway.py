"""A fake Runway API on loopback, for the real `runwayml` SDK (RunwayML(base_url=...)).

    POST   /v1/image_to_video  -> {"id"}            (needs Authorization: Bearer <key> and X-Runway-Version)
    GET    /v1/tasks/{id}      -> PENDING | THROTTLED | RUNNING | SUCCEEDED (output: [video URL]) | FAILED | CANCELLED
    DELETE /v1/tasks/{id}      -> 204, the task CANCELLED

A body that breaks the model's schema is answered 400 with Runway's error body: `{"error": ..., "issues": [{"path",
"message"}]}`. Runway sends no webhooks: the tasks are polled.
"""

from __future__ import annotations

from typing import Any

from tests.support.fake_provider import FakeJob, FakeProviderServer, Received

RUNWAY_VERSION = "2024-11-06"


class FakeRunway(FakeProviderServer):
    default_script = ["PENDING", "RUNNING", "SUCCEEDED"]

    def is_submission(self, path: str) -> bool:
        return path == "/v1/image_to_video"

    def task(self, job: FakeJob, state: str) -> dict:
        body = {"id": job.id, "status": state, "createdAt": job.created_at}
        if state in ("PENDING", "THROTTLED", "RUNNING"):
            body["estimatedCost"] = {"credits": 5 * int(job.body.get("duration", 5))}
        else:
            body["cost"] = {"credits": 0 if state != "SUCCEEDED" else 5 * int(job.body.get("duration", 5))}
        if state == "RUNNING":
            body["progress"] = 0.5
        if state == "SUCCEEDED":
            body["output"] = [self.video_url(job.id)]
        if state == "FAILED":
            body["failure"] = "The task failed (fake)."
            body["failureCode"] = "INTERNAL"
        return body

    def route(self, method: str, path: str, received: Received, auth_ok: bool) -> tuple[int, Any]:
        if not auth_ok:
            return 401, {"error": "Invalid API key"}
        if received.headers.get("x-runway-version") != RUNWAY_VERSION:
            return 400, {"error": f"X-Runway-Version must be {RUNWAY_VERSION}"}
        if method == "POST" and self.is_submission(path):
            body = received.json() or {}
            errors = self.validate(str(body.get("model")), body)
            if errors is None:
                return 400, {"error": f"Model {body.get('model')!r} is not available for image_to_video"}
            if errors:
                return 400, {
                    "error": "Validation of body failed",
                    "issues": [{"path": e["loc"][1:], "message": e["msg"]} for e in errors],
                }
            return 200, {"id": self.new_job(body["model"], body).id}
        parts = path.strip("/").split("/")
        if parts[:2] == ["v1", "tasks"] and len(parts) == 3:
            job = self.jobs.get(parts[2])
            if job is None:
                return 404, {"error": "Task not found"}
            if method == "GET":
                return 200, self.task(job, job.read())
            if method == "DELETE":
                if job.state not in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    job.state_override = "CANCELLED"
                return 204, None
        return 404, {"error": f"No route {method} {path}"}
