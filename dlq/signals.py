"""Model hooks: counters for every new job; its error history follows a rename; backlogs
emptied when a job goes.

(A token limited to deleted jobs needs no hook: an empty job list allows no
job, see dlq.tokens.)"""

from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from errors import services as errors

from .models import Job, JobCounters


@receiver(post_save, sender=Job)
def create_counters(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        JobCounters.objects.get_or_create(job=instance)


@receiver(pre_save, sender=Job)
def note_a_rename(sender, instance, raw=False, update_fields=None, **kwargs):
    """Remember whether this save renames the job (one read of its name, on a job's save)."""
    instance._renamed = False
    if raw or instance.pk is None or (update_fields is not None and "name" not in update_fields):
        return
    before = Job.objects.filter(pk=instance.pk).values_list("name", flat=True).first()
    instance._renamed = before is not None and before != instance.name


@receiver(post_save, sender=Job)
def rename_error_history(sender, instance, created, raw=False, **kwargs):
    """A renamed job's error groups and counts show its new name."""
    if getattr(instance, "_renamed", False):
        errors.rename_job(instance.pk, instance.name)
        instance._renamed = False


@receiver(pre_delete, sender=Job)
def empty_backlogs_of(sender, instance, **kwargs):
    """The job's DLQ entries go with it (a cascade); its error groups, kept, wait for none
    and belong to no job (a new job of its name starts clean)."""
    errors.forget_job(instance.pk)
