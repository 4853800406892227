"""Inference: the responder pipeline (streaming, batch) behind infer.py."""
