"""Tools a plan's steps can call. ``default_registry()`` holds the built-in ones."""
