"""Loaded as a pytest plugin before Django: the settings the test run needs from the environment.

Django reads its settings before any conftest.py, so they are set here.
Values already in the environment win.
"""
import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("DEBUG", "false")
