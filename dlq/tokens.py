"""API tokens: shown once when created, stored only as a sha256 hash, limited to jobs, revocable."""

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import ApiToken

# A fixed marker makes a leaked token recognisable (to people and secret scanners).
MARKER = "velo_"
PREFIX_LENGTH = 12  # the marker and 7 random characters: enough to tell tokens apart
# last_used_at is for operators ("is this token still in use?"); writing it on
# every request would turn every API read into a write.
TOUCH_INTERVAL = timedelta(minutes=1)
# Far longer than any token we issue; longer input is not hashed, just refused.
MAX_PRESENTED_LENGTH = 200


def _hash(plaintext):
    return hashlib.sha256(plaintext.encode("utf-8", "replace")).hexdigest()


def create_token(name, jobs=(), can_requeue=False, created_by=None):
    """Create a token; return (token, plaintext). The plaintext is never stored: show it once."""
    max_length = ApiToken._meta.get_field("name").max_length
    if not name or len(name) > max_length:
        raise ValueError(f"a token name needs 1 to {max_length} characters")
    plaintext = MARKER + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            name=name,
            prefix=plaintext[:PREFIX_LENGTH],
            token_hash=_hash(plaintext),
            can_requeue=can_requeue,
            created_by=created_by,
        )
        if jobs:
            token.jobs.set(jobs)
    return token, plaintext


def authenticate(presented):
    """The live (unrevoked) token whose plaintext is `presented`, or None.

    `presented` is the token itself, not the whole Authorization header
    (dlq.api.auth parses the header). The lookup is by hash: the database
    never compares secrets, so there is no timing channel on the plaintext.
    """
    if not presented or len(presented) > MAX_PRESENTED_LENGTH:
        return None
    token = ApiToken.objects.filter(token_hash=_hash(presented), revoked_at__isnull=True).first()
    if token is not None:
        _touch(token)
    return token


def _touch(token):
    """Record the use, at most once per TOUCH_INTERVAL, so most requests write nothing."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_INTERVAL:
        return
    # Conditional, so concurrent requests of the same minute write once.
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOUCH_INTERVAL), pk=token.pk
    ).update(last_used_at=now)
    token.last_used_at = now


def token_allows_job(token, job):
    """Whether `token` may act on `job`: a token limited to no job may use every job."""
    allowed = list(token.jobs.values_list("pk", flat=True))
    return not allowed or job.pk in allowed


def revoke(token):
    """Revoke `token` for good; return False if it already was revoked."""
    now = timezone.now()
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if changed:
        token.revoked_at = now
    return bool(changed)
