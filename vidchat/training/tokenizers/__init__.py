"""Training the video tokenizer and the audio codec (`stage=video_tokenizer`, `stage=audio_codec`)."""
