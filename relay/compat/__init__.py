"""mikkoo and queue_splitter compatibility: reading their configuration files and importing them.

Owns: bounded reading of imported files, mikkoo's YAML and environment, queue_splitter's INI,
and writing what they configure into the models. May import the models and everything below.
"""
