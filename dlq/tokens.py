"""API tokens: shown once when created, stored only as a sha256 hash, limited to jobs, revocable."""

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import audit
from .models import ApiToken, OperatorAction

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


def create_token(name, jobs=None, can_requeue=False, created_by=None, actor=None):
    """Create a token; return (token, plaintext). The plaintext is never stored: show it once.

    `jobs` None makes a token for every job; a list limits it to those jobs (an
    empty list: to none). With an `actor` (a dlq.actors.Actor) the creation is
    written to the audit trail.
    """
    max_length = ApiToken._meta.get_field("name").max_length
    if not name or len(name) > max_length:
        raise ValueError(f"a token name needs 1 to {max_length} characters")
    plaintext = MARKER + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            name=name,
            prefix=plaintext[:PREFIX_LENGTH],
            token_hash=_hash(plaintext),
            all_jobs=jobs is None,
            can_requeue=can_requeue,
            created_by=created_by,
        )
        if jobs:
            token.jobs.set(jobs)
        if actor is not None:
            _audit(OperatorAction.Action.TOKEN_CREATE, actor, token, after=scope_of(token))
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
    """Whether `token` may act on `job`: every job with the flag, else only its listed jobs.

    An empty list allows nothing: a token whose jobs were all deleted fails closed.
    """
    return token.all_jobs or token.jobs.filter(pk=job.pk).exists()


def scope_of(token):
    """What a token may do, as the audit trail keeps it before and after a change."""
    return {
        "name": token.name,
        "all_jobs": token.all_jobs,
        "jobs": sorted(token.jobs.values_list("name", flat=True)),
        "can_requeue": token.can_requeue,
        "revoked": token.revoked_at is not None,
    }


def record_change(token, before, *, actor):
    """Audit a change of `token` from `before` (its scope_of earlier); nothing when none."""
    after = scope_of(token)
    if after != before:
        _audit(OperatorAction.Action.TOKEN_CHANGE, actor, token, before=before, after=after)


def revoke(token, actor=None):
    """Revoke `token` for good; return False if it already was revoked.

    With an `actor` the revocation is written to the audit trail, in the same transaction.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if changed:
            token.revoked_at = now
            if actor is not None:
                after = scope_of(token)
                before = {**after, "revoked": False}
                _audit(OperatorAction.Action.TOKEN_REVOKE, actor, token, before=before, after=after)
    return bool(changed)


def _audit(action, actor, token, *, before=None, after):
    changed = sorted(key for key in after if before is None or before[key] != after[key])
    audit.record(
        action,
        actor=actor,
        target=f"API token {token}",
        count=1,
        outcome=f"{OperatorAction.Action(action).label}: {', '.join(changed) or 'no change'}",
        details={"token_id": token.pk, "before": before, "after": after},
    )
