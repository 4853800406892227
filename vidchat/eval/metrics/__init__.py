"""VidChatBench metrics: plain functions on numpy arrays, plus a name -> metric registry.

Frames are `[T,H,W,3] uint8`, audio `[S] float32` with explicit rates. Every metric returns a
`MetricResult`; a network whose weights or package are missing gives an unavailable result
with a reason (nothing is ever downloaded). Heavy packages are imported inside the functions,
so importing this package is cheap.
"""

from vidchat.eval.metrics.registry import REGISTRY, Metric, get_metric, resolve_callable
from vidchat.eval.metrics.result import MetricResult
from vidchat.eval.metrics.sample import EvalSample

__all__ = ["REGISTRY", "EvalSample", "Metric", "MetricResult", "get_metric", "resolve_callable"]
