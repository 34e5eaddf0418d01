from django.apps import AppConfig
from django.conf import settings

from errors.panels import register as register_panel
from errors.panels import register_entry_link

from . import processors
from .processors import builtin


class DlqConfig(AppConfig):
    name = "dlq"
    verbose_name = "Dead letter queue"

    def ready(self):
        processors.registry.register_all(builtin.PROCESSORS)
        # VELO_PROCESSORS modules may use models, and signals and panels do: they
        # are imported once every app is loaded, which is now and not at the top.
        processors.load_configured(settings.VELO_PROCESSORS)
        from . import panels, signals  # noqa: F401  (signals connect on import)

        register_panel(panels.pending_entries)  # the group page's DLQ entries (errors.panels)
        register_entry_link(panels.batch_entries_url)  # an occurrence's entries
