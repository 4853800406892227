"""The flat head: every code is one backbone step, predicted by the backbone's output head.

It has no parameters. In a model where another stream is grouped, this stream's single-code
steps are predicted by the model's single-step head (`vidchat.model.heads.base`).
"""

from __future__ import annotations

from vidchat.model.heads.base import Head


class FlatHead(Head):
    kind = "flat"
