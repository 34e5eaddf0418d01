from django.apps import AppConfig


class DlqConfig(AppConfig):
    name = "dlq"
    verbose_name = "Dead letter queue"

    def ready(self):
        from . import processors, signals  # noqa: F401  (signals connect on import)

        processors.load_builtin_and_configured()
