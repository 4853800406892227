"""VidChatBench metrics: plain functions on numpy arrays, and the name -> metric registry
(`vidchat.eval.metrics.registry`).

Frames are `[T,H,W,3] uint8`, audio `[S] float32` with explicit rates. Every metric returns a
`MetricResult` (`result`); a network whose weights or package are missing gives an unavailable
result with a reason (nothing is ever downloaded). The networks themselves live in
`vidchat.perception`, which curation reads too. Heavy packages are imported inside the
functions, so importing this package is cheap.
"""
