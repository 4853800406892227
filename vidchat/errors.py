"""User-facing errors: raised for bad input (missing file, corrupt clip, wrong config value).

Entry points (`train.py`, `infer.py`, `python -m vidchat.eval`) print these as one line and exit
non-zero instead of showing a stack trace; everything else is a bug and keeps its traceback.
"""


class VidchatError(Exception):
    """An error the user can fix; its message is a complete one-line explanation."""


class ConfigError(VidchatError, ValueError):
    """A config value is missing, unknown or inconsistent."""
