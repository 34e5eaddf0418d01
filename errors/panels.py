"""Panels that higher layers add to an error group's page.

`errors` must not import `dlq`, yet a group's page should show its DLQ
entries: the dlq app registers a panel here when it starts instead.
"""

from django.utils.html import conditional_escape

_panels = []


def register(panel):
    """Add `panel(request, group) -> html or None`; registering it again changes nothing."""
    if panel not in _panels:
        _panels.append(panel)
    return panel


def render(request, group):
    """Each panel's HTML, in registration order; plain strings are escaped, not trusted."""
    rendered = (panel(request, group) for panel in _panels)
    return [conditional_escape(html) for html in rendered if html]
