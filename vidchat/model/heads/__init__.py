"""Heads: how each stream's codes are predicted (`base`), the built-in kinds, and the registry
(`registry`) that `model.layout.video_head` / `audio_head` name."""
