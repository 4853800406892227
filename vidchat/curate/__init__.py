"""Curation: raw conversation videos -> the SpeakerVid-5M release layout, on Ray Data.

Stages: shots (PySceneDetect), speech (Silero VAD, Resemblyzer diarisation), people (dlib faces,
tracks, mouth opening, voice-face binding), then the run-wide plan (clips, quality filters,
report) and the cut. `python -m vidchat.curate input=DIR output=DIR`.
"""
