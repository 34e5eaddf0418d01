"""Regrouping a job's error history: plan from the stored messages, then move what must move.

`plan` reads every stored message of the job (its occurrences, and what the
caller adds: the DLQ's entries), keys each under the new rules, and decides
which group holds each key afterwards:

- a key that already leads to a group stays with it (a merge an operator made,
  an earlier regroup), so regrouping twice moves nothing the second time;
- otherwise the key goes to the group for which it is the largest part and
  which holds most of its messages: a group split in two keeps its id with its
  larger part, and groups whose largest part is the same key merge into one;
- a key that no group takes that way makes a new group.

`prepare` makes the new groups and points every key at its group; from then
on new failures land where history is going. `move_occurrences` then walks
the occurrences in id chunks, each in its own transaction, moving those whose
key's group is not theirs, with their minute, hourly, daily and weekly rollups and
their share of the groups' counts. `finish` folds the groups left without a
part into the one their messages went to, sets what the groups show
(template, first and last seen, status: a merged group is resolved only if
all its parts were) and deletes the folded groups. What was purged cannot be
attributed to a part: it stays with the group it was counted in.

Occurrences do not store their error type: a group's messages are keyed with
the group's type.
"""

from collections import Counter, defaultdict

from django.db.models import F, Max, Min

from common import bulk

from .fingerprint import GROUPING_VERSION
from .models import ROLLUP_KEY, ErrorGroup, ErrorOccurrence, ErrorRollup, Grain, GroupKey
from .services import day_of, hour_of, minute_of, week_of

CHUNK = 2000


def plan(
    job_name, rules, *, job_id=None, job_key=None, extra=(), only_groups=None, ignore_keys_of=()
):
    """The plan (JSON) of regrouping `job_name` under `rules` (an errors.rules.Rules).

    `job_id`: the job whose groups these are (else the groups of that name);
    `job_key`: what its fingerprints hash (group_failures'; the name if none).

    `extra`: more stored messages as (group id, error type, message, pending)
    tuples, such as the job's DLQ entries. `only_groups`: regroup those groups
    only. `ignore_keys_of`: group ids whose keys are not kept (an unmerge).
    """
    job_key = job_name if job_key is None else job_key
    groups = _groups_of(job_name, job_id)
    if only_groups is not None:
        groups = groups.filter(pk__in=list(only_groups))
    info = {
        pk: {"type": error_type, "template": template, "last": last, "status": status}
        for pk, error_type, template, last, status in groups.values_list(
            "pk", "error_type", "template", "last_message", "status"
        )
    }
    # By group: an occurrence keeps the job's name of its day (errors.services.rename_job).
    occurrences = ErrorOccurrence.objects.filter(group_id__in=list(info))
    max_id = occurrences.aggregate(m=Max("pk"))["m"] or 0
    # (group, key) -> [occurrences, pending entries]; key -> template
    parts, templates = defaultdict(lambda: [0, 0]), {}

    def count(group_id, error_type, message, occurrences=0, pending=0):
        fp, template = rules.key(job_key, error_type, message)
        templates.setdefault(fp, template)
        part = parts[(group_id, fp)]
        part[0] += occurrences
        part[1] += pending

    for group_id, data in info.items():
        count(group_id, data["type"], data["last"])  # a group all of whose history was purged
    last = 0
    while True:
        rows = list(
            occurrences.filter(pk__gt=last, pk__lte=max_id)
            .order_by("pk")
            .values_list("pk", "group_id", "message", "count")[:CHUNK]
        )
        if not rows:
            break
        for _, group_id, message, n in rows:
            count(group_id, info[group_id]["type"], message, occurrences=n)
        last = rows[-1][0]
    for group_id, error_type, message, pending in extra:
        if group_id in info:
            count(group_id, error_type, message, pending=int(bool(pending)))
    decided = _decide(job_name, info, parts, templates, max_id, set(ignore_keys_of))
    return {**decided, "job_id": job_id, "job_key": job_key}


def _groups_of(job_name, job_id):
    """The job's groups: by its id when it has one (a group of a job gone that had its name
    is not its), else by name."""
    groups = ErrorGroup.objects.filter(job_name=job_name)
    return groups if job_id is None else groups.filter(job_id=job_id)


def _decide(job_name, info, parts, templates, max_id, ignore_keys_of):
    by_group = defaultdict(dict)  # group -> key -> (occurrences, pending entries)
    for (group_id, fp), sizes in parts.items():
        by_group[group_id][fp] = tuple(sizes)
    largest = {g: max(fps, key=lambda fp: (sum(fps[fp]), fp)) for g, fps in by_group.items()}
    targets = {
        fp: group_id
        for fp, group_id in GroupKey.objects.filter(fingerprint__in=sorted(templates))
        .exclude(group_id__in=sorted(ignore_keys_of))
        .values_list("fingerprint", "group_id")
        if group_id in info
    }
    taken = set(targets.values())
    claims = defaultdict(list)  # key -> the groups whose largest part it is
    for group_id, fp in sorted(largest.items()):
        claims[fp].append(group_id)
    for fp in sorted(templates):
        if fp in targets:
            continue
        candidates = [g for g in claims[fp] if g not in taken]
        if candidates:
            targets[fp] = max(candidates, key=lambda g: (by_group[g][fp][0], -g))
            taken.add(targets[fp])
        else:
            targets[fp] = None  # a new group
    new = {}
    for fp in sorted(fp for fp, target in targets.items() if target is None):
        source = max(
            (g for g in by_group if fp in by_group[g]), key=lambda g: (sum(by_group[g][fp]), -g)
        )
        new[fp] = {
            "template": templates[fp],
            "type": info[source]["type"],
            "status": info[source]["status"],
        }
    absorbed = {g: largest[g] for g in info if g not in taken}
    return {
        "job": job_name,
        "version": GROUPING_VERSION,
        "max_occurrence_id": max_id,
        "targets": targets,
        "new": new,
        "absorbed": {str(g): fp for g, fp in sorted(absorbed.items())},
        "templates": dict(templates),
        "report": _report(info, by_group, targets, absorbed, templates),
    }


def _report(info, by_group, targets, absorbed, templates):
    """What an operator reads before applying: merges, splits, and what moves."""

    def where(fp):
        return "new" if targets[fp] is None else targets[fp]

    moved = moved_pending = 0
    splits = []
    for group_id, fps in sorted(by_group.items()):
        for fp, (n, pending) in fps.items():
            if where(fp) != group_id:
                moved += n
                moved_pending += pending
        if len({where(fp) for fp in fps}) > 1:
            splits.append(
                {
                    "group": group_id,
                    "template": info[group_id]["template"],
                    "parts": [
                        {
                            "template": templates[fp],
                            "to": where(fp),
                            "occurrences": n,
                            "pending_entries": pending,
                        }
                        for fp, (n, pending) in sorted(
                            fps.items(), key=lambda i: (-sum(i[1]), i[0])
                        )
                    ],
                }
            )
    folded = defaultdict(list)  # where a group that ends goes: (its id, the key it goes with)
    for group_id, fp in sorted(absorbed.items()):
        folded[where(fp)].append((group_id, fp))
    merges = []
    for into, groups in sorted(folded.items(), key=lambda item: str(item[0])):
        members = sorted({g for g, _ in groups} | ({into} if into != "new" else set()))
        if len(members) > 1:
            merges.append(
                {
                    "into": into,
                    "template": templates[groups[0][1]],
                    "groups": [{"id": g, "template": info[g]["template"]} for g in members],
                }
            )
    new_groups = sum(1 for t in targets.values() if t is None)
    return {
        "groups_before": len(info),
        "groups_after": len(info) - len(absorbed) + new_groups,
        "merges": merges,
        "splits": splits,
        "new_groups": new_groups,
        "moved_occurrences": moved,
        "moved_pending_entries": moved_pending,
    }


def prepare(plan, *, now):
    """Make the plan's new groups and point each key at its group (in the caller's transaction).

    Fills in the new groups' ids, so the plan can be stored and resumed.
    """
    job_name = plan["job"]
    for fp, data in plan["new"].items():
        if plan["targets"].get(fp) is not None:
            continue  # made by an earlier try of this run
        group, _ = ErrorGroup.objects.get_or_create(
            fingerprint=fp,
            defaults={
                "job_name": job_name,
                "job_id": plan.get("job_id"),
                "error_type": data["type"],
                "template": data["template"],
                "last_message": data["template"],
                "count": 0,
                "first_seen": now,
                "last_seen": now,
                "status": data["status"],
                "grouping_version": plan["version"],
            },
        )
        plan["targets"][fp] = group.pk
    for fp, group_id in plan["targets"].items():
        changed = GroupKey.objects.filter(fingerprint=fp).update(group_id=group_id)
        if not changed:
            GroupKey.objects.create(
                fingerprint=fp,
                group_id=group_id,
                grouping_version=plan["version"],
                template=plan["templates"].get(fp, ""),
                created_at=now,
            )
    for group_id, fp in plan["absorbed"].items():
        GroupKey.objects.filter(group_id=int(group_id)).update(group_id=plan["targets"][fp])
    return plan


def target_of(plan, rules, error_type, message, current):
    """The group a stored message belongs to under the plan (its own when the plan is silent)."""
    fp, _ = rules.key(plan.get("job_key") or plan["job"], error_type, message)
    target = plan["targets"].get(fp)
    return current if target is None else target


def move_occurrences(plan, rules, after, *, size=CHUNK):
    """Move the next chunk of occurrences past id `after`; return (failures moved, last id or
    None).

    Run it in a transaction (the caller's, with its cursor): the occurrences,
    their rollup rows and the groups' counts change together, by each row's
    count. Moving is idempotent: an occurrence already in its group does not
    move again. A row holds one message, so it moves whole.
    """
    types = dict(_groups_of(plan["job"], plan.get("job_id")).values_list("pk", "error_type"))
    rows = list(
        ErrorOccurrence.objects.select_for_update()
        .filter(group_id__in=sorted(types), pk__gt=after, pk__lte=plan["max_occurrence_id"])
        .order_by("pk")
        .values_list(
            "pk", "group_id", "message", "count", "occurred_at", "node_id", "region", "version"
        )[:size]
    )
    if not rows:
        return 0, None
    moves = []
    for pk, group_id, message, n, at, node, region, version in rows:
        target = target_of(plan, rules, types.get(group_id, ""), message, group_id)
        if target != group_id:
            moves.append((pk, n, group_id, target, at, node, region, version))
    _apply_moves(moves, plan["job"])
    return sum(move[1] for move in moves), rows[-1][0]


def _apply_moves(moves, job_name):
    by_target = defaultdict(list)
    deltas = Counter()
    counts = Counter()
    for pk, n, source, target, at, node, region, version in moves:
        by_target[target].append(pk)
        for grain, bucket in (
            (Grain.MINUTE, minute_of(at)),
            (Grain.HOUR, hour_of(at)),
            (Grain.DAY, day_of(at)),
            (Grain.WEEK, week_of(at)),
        ):
            deltas[(grain, bucket, node, region, version, source)] -= n
            deltas[(grain, bucket, node, region, version, target)] += n
        counts[source] -= n
        counts[target] += n
    for target, ids in sorted(by_target.items()):
        ErrorOccurrence.objects.filter(pk__in=ids).update(group_id=target)
    _merge_rollups(deltas, job_name)
    for group_id, delta in sorted(counts.items()):
        if delta:
            ErrorGroup.objects.filter(pk=group_id).update(count=F("count") + delta)


def _merge_rollups(deltas, job_name):
    rows = [
        {
            "job_name": job_name,
            "grain": grain,
            "bucket": bucket,
            "node_id": node,
            "region": region,
            "version": version,
            "group_id": group_id,
            "count": n,
        }
        for (grain, bucket, node, region, version, group_id), n in deltas.items()
        if n
    ]
    bulk.merge_rows(ErrorRollup, rows, key=ROLLUP_KEY, add=["count"])
    ErrorRollup.objects.filter(count__lte=0).delete()


def finish(plan, *, now):
    """Fold the groups left without a part into theirs, set what every group shows, delete the
    folded ones (in the caller's transaction, after every occurrence and entry has moved)."""
    targets = plan["targets"]
    absorbed = {int(g): targets[fp] for g, fp in plan["absorbed"].items()}
    statuses = dict(
        ErrorGroup.objects.filter(pk__in=sorted({*absorbed, *targets.values()})).values_list(
            "pk", "status"
        )
    )
    folded = defaultdict(set)  # a group -> the groups folded into it
    for group_id, into in sorted(absorbed.items()):
        _fold(group_id, into)
        folded[into].add(group_id)
    made = {targets[fp] for fp in plan["new"]}
    template_of = {group_id: plan["templates"][fp] for fp, group_id in targets.items()}
    for group_id in sorted(set(targets.values())):
        changes = {"grouping_version": plan["version"], "template": template_of[group_id]}
        if folded[group_id]:
            # A merged group is resolved (or ignored) only if all its parts were.
            kinds = {statuses.get(g) for g in {*folded[group_id], group_id}} - {None}
            changes["status"] = kinds.pop() if len(kinds) == 1 else ErrorGroup.Status.UNRESOLVED
        changes.update(_seen(group_id, made=group_id in made))
        ErrorGroup.objects.filter(pk=group_id).update(**changes)
    # Locked first: a worker that grouped failures into one of them before prepare() holds
    # its row until it commits its entries, and the delete's PROTECT check must see them
    # (entries' keys are not database constraints).
    doomed = ErrorGroup.objects.filter(pk__in=sorted(absorbed))
    list(doomed.select_for_update().order_by("pk").values_list("pk", flat=True))
    doomed.delete()


def _fold(group_id, into):
    """Move what is left of a group (counts of purged history, rollups, keys) into another."""
    group = ErrorGroup.objects.filter(pk=group_id).first()
    if group is None or into == group_id:
        return
    ErrorOccurrence.objects.filter(group_id=group_id).update(group_id=into)
    columns = ("grain", "bucket", "node_id", "region", "version", "job_name", "count")
    rows = [
        {**row, "group_id": into}
        for row in ErrorRollup.objects.filter(group_id=group_id).values(*columns)
    ]
    bulk.merge_rows(ErrorRollup, rows, key=ROLLUP_KEY, add=["count"])
    ErrorRollup.objects.filter(group_id=group_id).delete()
    GroupKey.objects.filter(group_id=group_id).update(group_id=into)
    kept = ErrorGroup.objects.get(pk=into)
    ErrorGroup.objects.filter(pk=into).update(
        count=F("count") + group.count,
        first_seen=min(kept.first_seen, group.first_seen),
        last_seen=max(kept.last_seen, group.last_seen),
        regressed_at=max(filter(None, (kept.regressed_at, group.regressed_at)), default=None),
    )


def _seen(group_id, *, made):
    """First and last seen and the last message of a group, from the occurrences it holds now.

    The latest occurrences are never purged before the older ones, so the last
    one stored is the group's last; a group made by the plan was first seen
    when its first moved occurrence was.
    """
    span = ErrorOccurrence.objects.filter(group_id=group_id).aggregate(
        first=Min("occurred_at"), last=Max("occurred_at")
    )
    if span["last"] is None:
        return {}
    latest = (
        ErrorOccurrence.objects.filter(group_id=group_id)
        .order_by("-occurred_at", "-pk")
        .values_list("message", flat=True)
        .first()
    )
    seen = {"last_seen": span["last"], "last_message": latest}
    if made:
        seen["first_seen"] = span["first"]
    else:
        first = ErrorGroup.objects.filter(pk=group_id).values_list("first_seen", flat=True).get()
        seen["first_seen"] = min(first, span["first"])
    return seen
