"""`{{ moment|ago }}`: a relative time for reading at a glance, the exact UTC time on hover
(common.moments, which the admin's time columns use too)."""

from django import template

from common.moments import moment_html

register = template.Library()


@register.filter
def ago(moment):
    return moment_html(moment)
