"""Perception networks and measures that evaluation and curation share: face detection and
landmarks (`faces`), SyncNet (`syncnet`), Silero VAD (`vad`), Resemblyzer (`voice`), TorchScript
feature networks (`features`), user weight files and missing extras (`weights`), frame and audio
checks (`frames`, `audio`), MFCC (`mfcc`), signal processing (`signal`) and SSIM (`ssim`).

Nothing here scores a model: metrics (`vidchat.eval.metrics`) and curation stages
(`vidchat.curate`) are built on these. Nothing is ever downloaded: a network whose package or
weights are missing says so."""
