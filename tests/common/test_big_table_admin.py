"""BigTableAdmin's shortcuts give the very HTML Django's own admin gives."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group

from common.admin import BigTableAdmin


@pytest.mark.django_db
def test_big_table_admins_render_the_row_checkbox_as_django_does():
    row = Group.objects.create(name='<b>ops</b> & "friends"')
    site = admin.AdminSite()
    ours = BigTableAdmin(Group, site).action_checkbox(row)
    assert ours == admin.ModelAdmin(Group, site).action_checkbox(row)
    assert "&lt;b&gt;ops&lt;/b&gt;" in ours
