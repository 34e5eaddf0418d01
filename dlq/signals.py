"""Model hooks: counters for every new job, backlogs emptied when a job goes.

(A token limited to deleted jobs needs no hook: an empty job list allows no
job, see dlq.tokens.)"""

from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from errors.models import ErrorGroup

from .models import Job, JobCounters


@receiver(post_save, sender=Job)
def create_counters(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        JobCounters.objects.get_or_create(job=instance)


@receiver(pre_delete, sender=Job)
def empty_backlogs_of(sender, instance, **kwargs):
    """The job's DLQ entries go with it (a cascade); its error groups, kept, wait for none."""
    ErrorGroup.objects.filter(job_name=instance.name).update(dlq_pending=0)
