"""GenerationJob.ACTIVE_STATUSES / AT_PROVIDER_STATUSES are the one lists of unfinished jobs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from common.stale_work import StaleCutoffs
from generation import selectors
from generation.models import GenerationJob
from tests.support.factories import GenerationJobFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", GenerationJob.Status.values)
def test_finished_and_stale_follow_the_one_list(status):
    job = GenerationJobFactory(provider_request_id="req-1", status=status)
    GenerationJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(hours=1))

    _, to_poll = selectors.stale_jobs(StaleCutoffs(running_before=timezone.now(), queued_before=timezone.now()))

    assert job.is_finished is (status not in GenerationJob.ACTIVE_STATUSES)
    assert (job.pk in to_poll) is (status in GenerationJob.AT_PROVIDER_STATUSES)
    assert set(GenerationJob.AT_PROVIDER_STATUSES) < set(GenerationJob.ACTIVE_STATUSES)


@pytest.mark.parametrize("status", GenerationJob.Status.values)
def test_the_page_and_the_api_say_finished_from_the_same_list(status, client):
    job = GenerationJobFactory(status=status)
    client.force_login(job.requester)

    page = client.get(job.get_absolute_url()).content.decode()
    api = client.get(f"/api/v1/generate/{job.job_id}").json()

    finished = status not in GenerationJob.ACTIVE_STATUSES
    assert api["finished"] is finished
    assert f'data-finished="{"true" if finished else "false"}"' in page  # what generation.js polls on
