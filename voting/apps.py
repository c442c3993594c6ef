from django.apps import AppConfig


class VotingConfig(AppConfig):
    name = "voting"
    verbose_name = "Submissions and voting"

    def ready(self):
        from . import handlers  # noqa: F401 - connects the winner event to the Character DNA lock
