"""Every job has its counters row from the start, so /metrics shows zeros, not gaps."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Job, JobCounters


@receiver(post_save, sender=Job)
def create_counters(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        JobCounters.objects.get_or_create(job=instance)
