"""Admin forms that never render a stored secret back to the browser, and check TLS files before saving."""
from __future__ import annotations

from django import forms

from ..amqp.tls import tls_requested
from ..core.errors import InvalidConfiguration
from ..models import BrokerConnection, RelayedQueue
from ..secret_refs import reference_name, resolve
from ..validation import tls_problems


class SecretFieldsForm(forms.ModelForm):
    """A model form whose secret fields render empty; left blank they keep the stored value.

    A field absent from the form (a user who may only view gets no editable
    fields at all) is left alone.
    """

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            field = self.fields.get(name)
            if field is None:
                continue
            field.widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            stored = getattr(self.instance, name) if self.instance.pk else ""
            if stored:
                field.required = False
                variable = reference_name(stored)
                # A reference is no secret: saying which variable is read helps, and shows no value.
                note = f"Now read from the environment variable {variable}." if variable else "A value is stored."
                field.help_text = f"{field.help_text} ({note})"

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            for name in self.secret_fields:
                if name in self.fields and not cleaned.get(name):
                    cleaned[name] = getattr(self.instance, name)
        return cleaned


class BrokerConnectionForm(SecretFieldsForm):
    """A RabbitMQ connection; with TLS, its certificate files and options are loaded before it is saved."""

    secret_fields = BrokerConnection.SECRET_FIELDS

    class Meta:
        model = BrokerConnection
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        url = cleaned.get("url") or ""
        if not tls_requested(cleaned.get("use_tls"), url) or "tls_protocol" not in self.fields:
            return cleaned
        try:
            password = resolve(cleaned.get("key_password") or "", "client key password")
            password_known = True
        except InvalidConfiguration:
            # The variable may be set for the worker only: the key is checked when the relay connects.
            password, password_known = "", False
        problems = tls_problems(
            ca_certs=cleaned.get("ca_certs") or "", ca_path=cleaned.get("ca_path") or "",
            ca_data=cleaned.get("ca_data") or "", protocol=cleaned.get("tls_protocol") or "",
            certfile=cleaned.get("certfile") or "", keyfile=cleaned.get("keyfile") or "", password=password,
            ciphers=cleaned.get("ciphers") or "")
        if not password_known:
            problems.pop("certfile", None)
        for option, problem in problems.items():
            field = BrokerConnection.TLS_FIELDS[option]
            if field not in self.errors:
                self.add_error(field, problem)
        return cleaned


class RelayedQueueForm(SecretFieldsForm):
    secret_fields = RelayedQueue.SECRET_FIELDS

    class Meta:
        model = RelayedQueue
        fields = "__all__"
