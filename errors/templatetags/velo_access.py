"""{% may_view "app_label.ModelName" as name %}: whether to show a link, by common.access."""

from django import template

from common import access

register = template.Library()


@register.simple_tag(takes_context=True)
def may_view(context, model):
    request = context.get("request")
    return request is not None and access.may_view(request, model)
