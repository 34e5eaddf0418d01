from django.apps import AppConfig

from dlq.processors import registry

from . import processors


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Demo pipelines"

    def ready(self):
        registry.offer(processors.PROCESSORS)
