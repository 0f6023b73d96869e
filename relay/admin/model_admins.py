"""The operator's screens: connections, queues, dead letters, the audit status and the queue overview."""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

from ..core.errors import RelayError
from ..models import AuditStatus, BrokerConnection, DeadLetter, QueueOverview, QueueState, RelayedQueue
from ..runs.dead_letters import replay_dead_letters
from ..runs.registration import register_consumers, summary_lines
from ..runs.retire import retire_queue
from ..secret_refs import reference_name
from . import audit_views, dead_letter_views, overview_views
from .forms import BrokerConnectionForm, RelayedQueueForm
from .pages import PageAdmin


def _configuration(problems: list[str]):
    if not problems:
        return "ok"
    return format_html('<span class="relay-invalid" style="color: var(--error-fg, #ba2121)">invalid: {}</span>',
                       "; ".join(problems))


def _stored_secret(value: str) -> str:
    variable = reference_name(value) if value else None
    if variable:
        return f"read from the environment variable {variable}"
    return "a value is stored (encrypted, not shown)" if value else "-"


class SecretFieldsAdmin(admin.ModelAdmin):
    """Secret fields are never shown as text: someone who may only view sees whether one is stored instead."""

    #: secret field -> the read-only display shown in its place to those who may only view
    secret_displays: dict[str, str] = {}

    def _view_only(self, request, obj) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self._view_only(request, obj):
            return fieldsets
        present = {name for _, options in fieldsets for name in options["fields"]}
        result = []
        for title, options in fieldsets:
            fields = []
            for name in options["fields"]:
                shown = self.secret_displays.get(name)
                if shown is None:
                    fields.append(name)
                elif shown not in present:  # the display takes the secret's place, once
                    fields.append(shown)
                    present.add(shown)
            result.append((title, {**options, "fields": fields}))
        return result

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if self._view_only(request, obj):
            fields += [shown for shown in self.secret_displays.values() if shown not in fields]
        return fields


@admin.register(BrokerConnection)
class BrokerConnectionAdmin(SecretFieldsAdmin):
    form = BrokerConnectionForm
    list_display = ("name", "display_address", "heartbeat", "use_tls", "configuration")
    secret_displays = {"url": "stored_url", "password": "stored_password", "key_password": "stored_key_password"}
    search_fields = ("name", "hosts")
    fieldsets = (
        (None, {"fields": ("name", "url", "hosts", "port", "vhost", "username", "password")}),
        ("Timing and limits", {"fields": ("heartbeat", "connect_timeout", "confirm_timeout", "max_message_size")}),
        ("TLS (mikkoo ssl_options)", {
            "classes": ("collapse",),
            "fields": ("use_tls", "ca_certs", "ca_path", "ca_data", "tls_protocol", "certfile",
                       "keyfile", "key_password", "ciphers"),
        }),
    )

    @admin.display(description="address")
    def display_address(self, obj):
        return obj.display_address()

    @admin.display(description="configuration")
    def configuration(self, obj):
        return _configuration(obj.configuration_problems())

    @admin.display(description="AMQP URL")
    def stored_url(self, obj):
        return obj.display_address() if obj.url else "-"

    @admin.display(description="password")
    def stored_password(self, obj):
        return _stored_secret(obj.password)

    @admin.display(description="client key password")
    def stored_key_password(self, obj):
        return _stored_secret(obj.key_password)


@admin.register(RelayedQueue)
class RelayedQueueAdmin(SecretFieldsAdmin):
    form = RelayedQueueForm
    list_display = ("name", "queue_name", "consumer_name", "display_source", "target", "connection", "enabled",
                    "state", "confirm", "max_failures", "retry_delay", "dead_letter_count", "configuration")
    secret_displays = {"source_url": "display_source", "target_url": "display_target"}
    list_filter = ("enabled", "target", "connection")
    search_fields = ("name", "queue_name")
    readonly_fields = ("display_source", "display_target")
    fieldsets = (
        (None, {"fields": ("name", "queue_name", "source_url", "display_source", "consumer_name",
                           "target", "connection", "enabled")}),
        ("PostgreSQL target (queue_splitter)", {"fields": ("target_url", "display_target",
                                                           "create_target_queues")}),
        ("Delivery", {"fields": ("confirm", "persistent", "max_failures", "retry_delay",
                                 "wait_duration", "unregister")}),
    )

    delete_confirmation_template = "admin/relay/relayedqueue/delete_confirmation.html"

    def get_queryset(self, request):
        return (super().get_queryset(request).select_related("status", "connection")
                .annotate(dead_letter_count=Count("dead_letters")))

    @admin.display(description="state")
    def state(self, obj):
        status = getattr(obj, "status", None)
        return status.state(timezone.now()) if status is not None else QueueState.NOT_REGISTERED

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        source_changed = {"enabled", "source_url", "queue_name", "consumer_name"} & set(form.changed_data)
        if obj.enabled and (not change or source_changed or not obj.status.registered):
            # Now, not at the worker's first run: PgQ keeps every event written from here on for it.
            for registered, line in summary_lines(register_consumers([obj])):
                self.message_user(request, line, messages.INFO if registered else messages.WARNING)

    @admin.display(description="dead letters", ordering="dead_letter_count")
    def dead_letter_count(self, obj):
        return obj.dead_letter_count

    @admin.display(description="source database")
    def display_source(self, obj):
        return obj.display_source() if obj.pk else "-"

    @admin.display(description="configuration")
    def configuration(self, obj):
        return _configuration(obj.configuration_problems())

    def get_actions(self, request):
        # Deleting retires a queue (its PgQ consumer may be unregistered): one at a time, confirmed.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        queue = self.get_object(request, object_id)
        if request.method == "POST" and queue is not None and self.has_delete_permission(request, queue):
            try:
                note = retire_queue(queue)
            except RelayError as exc:
                self.message_user(request, f"{queue} was not deleted: {exc}", messages.ERROR)
                return redirect("admin:relay_relayedqueue_change", queue.pk)
            self.message_user(request, note, messages.SUCCESS)
            return redirect("admin:relay_relayedqueue_changelist")
        return super().delete_view(request, object_id, extra_context)

    @admin.display(description="target database")
    def display_target(self, obj):
        return obj.display_target() if obj.pk and obj.target_url else "-"


class ReasonKindFilter(admin.SimpleListFilter):
    """Dead letters by kind of reason: the texts differ per event, the kinds are few."""

    title = "reason"
    parameter_name = "reason_kind"
    kinds = {
        "invalid": ("Invalid event (never publishable)", ("ev_", "the properties and headers")),
        "refused": ("Refused by RabbitMQ (it closed the channel)", ("refused by RabbitMQ",)),
        "unsent": ("Could not be mapped or sent", ("could not be",)),
        "unroutable": ("Unroutable", ("unroutable",)),
        "exchange": ("Missing exchange", ("exchange ",)),
        "nacked": ("Nacked by RabbitMQ", ("nacked",)),
        "connection": ("Connection lost", ("connection lost",)),
        "timeout": ("No confirm in time", ("no confirm",)),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.kinds.items()]

    def queryset(self, request, queryset):
        if self.value() not in self.kinds:
            return queryset
        condition = Q()
        for prefix in self.kinds[self.value()][1]:
            condition |= Q(reason__startswith=prefix)
        return queryset.filter(condition)


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("event_id", "queue", "type_cell", "data_cell", "reason_cell", "failures", "first_failed_at",
                    "dead_lettered_at", "replayed_at")
    list_filter = ("queue", ReasonKindFilter, ("replayed_at", admin.EmptyFieldListFilter))
    search_fields = ("=event_id",)
    readonly_fields = [*(f.name for f in DeadLetter._meta.fields if f.name not in dead_letter_views.LARGE_FIELDS),
                       *(f"{name}_preview" for name in dead_letter_views.LARGE_FIELDS)]
    actions = ["replay", "discard"]
    fieldsets = (
        (None, {"fields": ("queue", "event_id", "reason_preview", "failures", "first_failed_at", "dead_lettered_at",
                           "replayed_at", "replayed_by")}),
        ("The event", {"fields": ("event_type_preview", "event_data_preview", "extra1_preview", "extra2_preview",
                                  "extra3_preview", "extra4_preview", "event_time", "event_txid", "source_id")}),
    )

    def get_queryset(self, request):
        # Lists read a short prefix and the size of the large fields, the detail a longer preview: never all of it.
        match = request.resolver_match
        detail = match is not None and match.url_name == "relay_deadletter_change"
        chars = dead_letter_views.PREVIEW_CHARS if detail else dead_letter_views.LIST_CHARS + 1
        return dead_letter_views.with_previews(super().get_queryset(request), chars)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/download/<str:field>/", self.admin_site.admin_view(self.download_view),
                 name="{}_{}_download".format(*info)),
            *super().get_urls(),
        ]

    def download_view(self, request, object_id, field):
        return dead_letter_views.download(request, self, object_id, field)

    type_cell = dead_letter_views.list_column("event_type")
    data_cell = dead_letter_views.list_column("event_data")
    reason_cell = dead_letter_views.list_column("reason")
    event_type_preview = dead_letter_views.preview_column("event_type")
    event_data_preview = dead_letter_views.preview_column("event_data")
    extra1_preview = dead_letter_views.preview_column("extra1")
    extra2_preview = dead_letter_views.preview_column("extra2")
    extra3_preview = dead_letter_views.preview_column("extra3")
    extra4_preview = dead_letter_views.preview_column("extra4")
    reason_preview = dead_letter_views.preview_column("reason")

    def has_add_permission(self, request):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # offered as "discard", with the same confirmation page
        return actions

    @admin.action(description="Replay: put the selected events back into their PgQ queues",
                  permissions=["change"])
    def replay(self, request, queryset):
        try:
            # The whole events, not the list's previews.
            letters = DeadLetter.objects.filter(pk__in=queryset.values("pk")).select_related("queue")
            count = replay_dead_letters(letters, request.user.get_username())
        except RelayError as exc:
            self.message_user(request, f"Nothing replayed for that queue: {exc}", messages.ERROR)
            return
        skipped = queryset.count() - count
        note = f" ({skipped} already replayed, left alone)" if skipped else ""
        self.message_user(request, f"{count} events put back into their PgQ queues{note}.", messages.SUCCESS)

    @admin.action(description="Discard the selected dead letters", permissions=["delete"])
    def discard(self, request, queryset):
        # Django's own confirmation page: nothing is deleted until the operator confirms.
        return delete_selected(self, request, queryset)


@admin.register(AuditStatus)
class AuditStatusAdmin(PageAdmin):
    """The audit status page, and each queue's outstanding audit records."""

    permission = audit_views.PERMISSION

    def extra_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [path("<slug:name>/outstanding/", self.admin_site.admin_view(self.outstanding_view),
                     name="{}_{}_outstanding".format(*info))]

    def changelist_view(self, request, extra_context=None):
        return audit_views.audit_status(request, self)

    def outstanding_view(self, request, name):
        return audit_views.outstanding(request, self, name)


@admin.register(QueueOverview)
class QueueOverviewAdmin(PageAdmin):
    """The queue overview page."""

    permission = overview_views.PERMISSION

    def changelist_view(self, request, extra_context=None):
        return overview_views.queue_overview(request, self)
