"""Panels that higher layers add to an error group's page, and their links from occurrences.

`errors` must not import `dlq`, yet a group's page should show its DLQ
entries: the dlq app registers a panel here when it starts instead, and the
link from an occurrence to the entries of its batch in its group.
"""

from django.utils.html import conditional_escape

_panels = []
_entry_links = []


def register(panel):
    """Add `panel(request, group) -> html or None`; registering it again changes nothing."""
    if panel not in _panels:
        _panels.append(panel)
    return panel


def render(request, group):
    """Each panel's HTML, in registration order; plain strings are escaped, not trusted."""
    rendered = (panel(request, group) for panel in _panels)
    return [conditional_escape(html) for html in rendered if html]


def register_entry_link(link):
    """Add `link(request, group_id, batch_id) -> url or None`: the list of the records of one
    batch that failed into one group. An occurrence counts many failures, so it names no
    single entry; this is where its records are."""
    if link not in _entry_links:
        _entry_links.append(link)
    return link


def entries_url(request, group_id, batch_id):
    """Where the records of an occurrence are (the first link that knows), or None."""
    if batch_id is None:
        return None
    return next((url for link in _entry_links if (url := link(request, group_id, batch_id))), None)
