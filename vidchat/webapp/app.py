"""The page: Gradio Blocks over `session` (record or upload a turn, pick a face, watch the answer
stream in, download it). Local only: analytics off, system fonts (no CDN), no share link unless
asked, one generation at a time with the others queued."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

import vidchat.webapp.session as session  # noqa: E402
from vidchat.errors import VidchatError  # noqa: E402
from vidchat.inference.pipeline import ResponderPipeline  # noqa: E402
from vidchat.model.generate import SamplingConfig, TokenSampling  # noqa: E402
from vidchat.webapp.config import DemoConfig  # noqa: E402
from vidchat.webapp.live import LiveService, live_service  # noqa: E402
from vidchat.webapp.workdirs import WorkDirs  # noqa: E402

CSS = "#live img { image-rendering: pixelated; }"


def theme() -> gr.themes.Base:
    """The default look with the system's fonts: the stock theme fetches Google Fonts."""
    local = [gr.themes.Font("system-ui"), gr.themes.Font("sans-serif")]
    mono = [gr.themes.Font("ui-monospace"), gr.themes.Font("monospace")]
    return gr.themes.Default(font=local, font_mono=mono)


def responder(cfg: DemoConfig, pipe: ResponderPipeline, work: WorkDirs):
    """The click handler: a generator of (live frame, status, answer video) updates."""
    limits = session.Limits(cfg.max_upload_mb, cfg.max_input_seconds, cfg.max_answer_seconds)
    clips, _, refs_dir = session.demo_choices(cfg.demo_data)
    clip_paths = dict(clips)  # the page names demo clips; server paths stay on the server

    def respond(
        upload: str | None,
        demo_clip: str | None,
        face: str | None,
        face_upload: str | None,
        temperature: float,
        top_k: float,
        top_p: float,
        seed: float,
        max_seconds: float,
    ) -> Iterator[tuple[Any, str, Any]]:
        try:
            partner = session.check_partner(upload or clip_paths.get(demo_clip or ""), limits)
            reference = session.pick_reference(pipe, face, face_upload, refs_dir)
            sampling = session.sampling_config(temperature, top_k, top_p, seed)
            seconds = session.answer_seconds(max_seconds, cfg.max_answer_seconds)
            for step in session.answer(pipe, partner, reference, sampling, seconds, work.new()):
                yield (
                    step.preview if step.preview is not None else gr.skip(),
                    step.status,
                    step.video if step.video else gr.skip(),
                )
        except VidchatError as exc:  # bad upload or setting: one message, keep serving
            raise gr.Error(str(exc), print_exception=False) from None

    return respond


def sampling_inputs() -> tuple[gr.Slider, gr.Slider, gr.Slider, gr.Number]:
    """The sampling sliders, one setting for every token kind, at `SamplingConfig`'s defaults;
    `session.sampling_config` has `SamplingConfig` check what they send (temperature 0 is
    greedy)."""
    d, seed = TokenSampling(), SamplingConfig().seed
    return (
        gr.Slider(0.0, 2.0, d.temperature, step=0.05, label="temperature (0 = greedy)"),
        gr.Slider(0, 1024, d.top_k, step=1, label="top-k (0 = off)"),
        gr.Slider(0.05, 1.0, d.top_p, step=0.05, label="top-p (1 = off)"),
        gr.Number(seed, precision=0, label="seed"),
    )


def build_app(cfg: DemoConfig, pipe: ResponderPipeline, work: WorkDirs) -> gr.Blocks:
    clips, faces, _ = session.demo_choices(cfg.demo_data)
    face_choices = [session.DEFAULT_FACE, *faces, session.UPLOADED_FACE]
    default_face = (
        session.DEFAULT_FACE
        if pipe.default_reference is not None
        else (faces[0] if faces else session.UPLOADED_FACE)
    )
    sweep = max(60, cfg.delete_after_s // 3)
    cache = (sweep, cfg.delete_after_s)  # Gradio's own copies of uploads and answers
    with gr.Blocks(analytics_enabled=False, title="vidchat", delete_cache=cache) as app:
        gr.Markdown(
            "## vidchat: talk to a responder\nRecord a turn with your webcam and "
            "microphone, upload a clip, or pick a demo partner turn; then **Answer**."
        )
        with gr.Row():
            with gr.Column():
                upload = gr.Video(
                    label="your turn",
                    sources=["upload", "webcam"],
                    include_audio=True,
                    elem_id="partner",
                    height=240,
                )
                demo_clip = gr.Dropdown(
                    [name for name, _ in clips],
                    value=None,
                    label="or a demo partner turn",
                    elem_id="demo_clip",
                )
                face = gr.Dropdown(
                    face_choices, value=default_face, label="responder's face", elem_id="face"
                )
                face_upload = gr.Image(
                    type="filepath",
                    sources=["upload"],
                    label="uploaded face (with 'uploaded image')",
                )
                with gr.Accordion("sampling", open=False):
                    temperature, top_k, top_p, seed = sampling_inputs()
                    max_seconds = gr.Slider(
                        0.5,
                        cfg.max_answer_seconds,
                        min(5.0, cfg.max_answer_seconds),
                        step=0.5,
                        label="maximum length (s)",
                    )
                go = gr.Button("Answer", variant="primary", elem_id="go")
            with gr.Column():
                live = gr.Image(
                    label="live: partner | responder",
                    interactive=False,
                    buttons=["download", "fullscreen"],
                    elem_id="live",
                    height=240,
                )
                status = gr.Markdown(elem_id="status")
                answer = gr.Video(
                    label="answer (partner turn, then the response)",
                    interactive=False,
                    elem_id="answer",
                    height=240,
                    buttons=["download"],
                )
        go.click(
            responder(cfg, pipe, work),
            [upload, demo_clip, face, face_upload, temperature, top_k, top_p, seed, max_seconds],
            [live, status, answer],
            concurrency_limit=1,
            api_name="answer",
        )
    return app.queue(max_size=cfg.queue_size, default_concurrency_limit=1)


def launch(
    cfg: DemoConfig,
    pipe: ResponderPipeline,
    block: bool = True,
    work: WorkDirs | None = None,
    live: LiveService | None = None,
) -> gr.Blocks:
    """Serve the page on cfg.host:cfg.port (uploads capped at cfg.max_upload_mb), and the live
    chat (`live`, default: from cfg) at /live on the same server: its routes come before
    Gradio's, and Gradio's server runs its lifespan, which ends a live session on close. Gradio
    keeps its copies of uploads and answers in the server's work folder, which `remove_all`
    clears."""
    work = work or WorkDirs(max_age_s=cfg.delete_after_s)
    work.hand_to_gradio()  # the folders that uploads and answers use are read as the app is built
    live = live or live_service(cfg, pipe)
    app = build_app(cfg, pipe, work)
    app.launch(
        server_name=cfg.host,
        server_port=cfg.port,
        share=cfg.share,
        theme=theme(),
        css=CSS,
        max_file_size=int(cfg.max_upload_mb * 2**20),
        show_error=True,
        prevent_thread_lock=not block,
        quiet=not block,
        footer_links=[],
        allowed_paths=[str(work.root)],
        app_kwargs={"routes": live.routes(), "lifespan": live.lifespan},
    )
    app.vidchat_work = work  # type: ignore[attr-defined]  # so callers can remove it
    app.vidchat_live = live  # type: ignore[attr-defined]  # so callers can end a live chat
    return app
