"""Small helpers shared by every package (no torch models here)."""
