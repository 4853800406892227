"""The one error type media I/O raises for files the user can fix."""

from __future__ import annotations

from vidchat.errors import VidchatError


class MediaError(VidchatError, ValueError):
    """A media file is missing, empty, corrupt, or lacks a required stream; names the file."""
