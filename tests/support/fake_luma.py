"""A fake Luma Dream Machine API on loopback, for the real `lumaai` SDK (LumaAI(base_url=...)).

    POST   /generations/video  -> 201 Generation, state queued   (Authorization: Bearer <key>)
    GET    /generations/{id}   -> queued | dreaming | completed (assets.video) | failed (failure_reason)
    DELETE /generations/{id}   -> 204

A body that breaks the model's schema is answered 400 with Luma's `{"detail": ...}`. Luma's callbacks are
unsigned: `callback_body()` is what one would carry (and a test may forge any other).
"""

from __future__ import annotations

from typing import Any

from tests.support.fake_provider import FakeJob, FakeProviderServer, Received


class FakeLuma(FakeProviderServer):
    default_script = ["queued", "dreaming", "completed"]

    def is_submission(self, path: str) -> bool:
        return path == "/generations/video"

    def generation(self, job: FakeJob, state: str) -> dict:
        return {
            "id": job.id,
            "state": state,
            "created_at": job.created_at,
            "generation_type": "video",
            "model": job.model,
            "request": job.body,
            "failure_reason": "The generation failed (fake)." if state == "failed" else None,
            "assets": {"video": self.video_url(job.id)} if state == "completed" else None,
        }

    def route(self, method: str, path: str, received: Received, auth_ok: bool) -> tuple[int, Any]:
        if not auth_ok:
            return 401, {"detail": "Invalid API key provided"}
        if method == "POST" and self.is_submission(path):
            body = received.json() or {}
            errors = self.validate(str(body.get("model")), body)
            if errors is None:
                return 400, {"detail": f"Unknown model {body.get('model')!r}"}
            if errors:
                return 400, {"detail": "; ".join(f"{'.'.join(e['loc'][1:])}: {e['msg']}".lstrip(": ") for e in errors)}
            return 201, self.generation(self.new_job(body["model"], body), "queued")
        parts = path.strip("/").split("/")
        if parts[0] == "generations" and len(parts) == 2:
            job = self.jobs.get(parts[1])
            if job is None:
                return 404, {"detail": "Generation not found"}
            if method == "GET":
                return 200, self.generation(job, job.read())
            if method == "DELETE":
                job.state_override = "failed"
                return 204, None
        return 404, {"detail": f"No route {method} {path}"}

    def callback_body(self, job_id: str) -> dict:
        with self.lock:
            job = self.jobs[job_id]
            return self.generation(job, job.state)
