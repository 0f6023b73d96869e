"""Template filters of the relay's admin pages."""
