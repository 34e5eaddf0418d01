"""Model hooks: counters for every new job; tokens never widen when a job goes."""

from django.db.models import Count
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver
from django.utils import timezone

from .models import ApiToken, Job, JobCounters


@receiver(post_save, sender=Job)
def create_counters(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        JobCounters.objects.get_or_create(job=instance)


@receiver(pre_delete, sender=Job)
def revoke_tokens_limited_to(sender, instance, **kwargs):
    """A token limited to this job alone would become an every-job token: revoke it instead."""
    ApiToken.objects.annotate(job_count=Count("jobs")).filter(
        jobs=instance, job_count=1, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
