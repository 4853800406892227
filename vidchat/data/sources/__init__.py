"""Data sources: each reads one on-disk layout into a `Manifest` of clip records and pairs."""
