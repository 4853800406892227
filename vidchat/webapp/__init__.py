"""The web demo: `python -m vidchat.webapp` serves a page where a person talks to a responder
(Gradio, local only). `session` holds the work (no Gradio import); `app` builds the page."""
