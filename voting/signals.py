"""Events the voting app emits for other capabilities to consume."""
import django.dispatch

# Sent once per session, after the commit that declared its winner.
# kwargs: session_id, story_id, submission_id, frame_ids, character_name, submitter_id, votes, decided_by
winner_declared = django.dispatch.Signal()
