from django.apps import AppConfig


class DlqConfig(AppConfig):
    name = "dlq"
    verbose_name = "Dead letter queue"

    def ready(self):
        from errors.panels import register as register_panel

        from . import panels, processors, signals  # noqa: F401  (signals connect on import)

        processors.load_builtin_and_configured()
        register_panel(panels.pending_entries)  # the group page's DLQ entries (errors.panels)
