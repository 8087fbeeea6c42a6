"""The ``taskforce`` command line."""
