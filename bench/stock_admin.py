"""The reference for the DLQ admin: a plain ModelAdmin, as `admin.register` would give anyone."""

from django.contrib import admin

from dlq.models import DLQEntry

site = admin.AdminSite(name="bench_stock_admin")


class StockDLQEntryAdmin(admin.ModelAdmin):
    # The columns Velo's list shows (its `error` and `node` cells are made of these).
    list_display = (
        "id",
        "job",
        "status",
        "error_type",
        "error_message",
        "attempts",
        "node_name",
        "created_at",
    )
    list_filter = ("job", "status", "error_group")
    search_fields = ("error_message",)


site.register(DLQEntry, StockDLQEntryAdmin)
