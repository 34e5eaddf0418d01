"""Model hooks: counters for every new job; tokens never widen when a job goes."""

from django.db.models import Count
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver
from django.utils import timezone

from errors.models import ErrorGroup

from .models import ApiToken, Job, JobCounters


@receiver(post_save, sender=Job)
def create_counters(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        JobCounters.objects.get_or_create(job=instance)


@receiver(pre_delete, sender=Job)
def empty_backlogs_of(sender, instance, **kwargs):
    """The job's DLQ entries go with it (a cascade); its error groups, kept, wait for none."""
    ErrorGroup.objects.filter(job_name=instance.name).update(dlq_pending=0)


@receiver(pre_delete, sender=Job)
def revoke_tokens_limited_to(sender, instance, **kwargs):
    """A token limited to this job alone would become an every-job token: revoke it instead."""
    ApiToken.objects.annotate(job_count=Count("jobs")).filter(
        jobs=instance, job_count=1, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
