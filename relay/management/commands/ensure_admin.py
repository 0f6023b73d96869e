"""``manage.py ensure_admin``: a superuser who can log in to the admin, with a password someone knows."""
from __future__ import annotations

import secrets
import sys
from typing import TextIO

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


class Command(BaseCommand):
    help = ("Make sure the admin user exists and may log in to the admin. With --password-stdin its password "
            "is set to the first line of standard input (an existing user's too); without it a new user gets a "
            "generated password, printed once, and an existing user keeps theirs.")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="The user's name (default: admin).")
        parser.add_argument("--email", default="admin@localhost", help="The e-mail of a new user.")
        parser.add_argument("--password-stdin", action="store_true",
                            help="Read the password from standard input (not from the command line, where "
                                 "other users of the machine could read it in the process list).")

    def handle(self, *args, username: str, email: str, password_stdin: bool, **options):
        password = None
        if password_stdin:
            # The stream given to call_command(), else the process's (options.get() with a default types as Any | None).
            stdin: TextIO = options["stdin"] if "stdin" in options else sys.stdin
            password = stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: standard input holds no password")
        user_model = get_user_model()
        with transaction.atomic():
            user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
            if user is None:
                generated = password is None
                password = password or secrets.token_urlsafe(12)
                self._validate(password, user_model(**{user_model.USERNAME_FIELD: username, "email": email}))
                user_model._default_manager.create_superuser(username, email, password)
                if generated:
                    self.stdout.write(f"admin user {username!r} created with the password {password}")
                else:
                    self.stdout.write(f"admin user {username!r} created with the given password")
                return
            if password is None:
                # Nothing was asked for: an operator's own password is never replaced behind their back.
                self.stdout.write(f"admin user {username!r} exists: its password is unchanged "
                                  "(give one to set it: ADMIN_PASSWORD for scripts/create-admin.sh)")
                return
            self._validate(password, user)
            user.set_password(password)
            # Whatever became of the account since, the promise is a user who can log in to the admin.
            user.is_active = user.is_staff = user.is_superuser = True
            user.save()
            self.stdout.write(f"admin user {username!r} exists: its password is set to the given one")

    @staticmethod
    def _validate(password: str, user) -> None:
        # The project's AUTH_PASSWORD_VALIDATORS, if it sets any (createsuperuser --no-input skips them).
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("the password is refused: " + " ".join(exc.messages)) from None
