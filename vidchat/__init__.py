"""vidchat: autoregressive audio-visual video-chat models."""

__version__ = "0.1.0"
