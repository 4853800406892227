"""The live page in a real browser: Debian's headless Chromium (system binary and driver, nothing
downloaded) with a fake camera (a Y4M file) and a fake microphone (a scripted WAV: speech, a
pause, speech over the answer), against `python -m vidchat.webapp` on a free local port with the
media kept on 127.0.0.1.

The page samples itself every 50 ms (the remote video's colour through a canvas, the remote
audio's level through a WebAudio analyser); the test reads the samples afterwards and checks
the turn-taking against the script's timeline, measured from when the fake microphone opened.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from tests.live.rtc_peers import free_port
from vidchat.data.demo_world.face import neutral_track, render_face
from vidchat.data.demo_world.identities import make_identities
from vidchat.data.demo_world.speech import synthesize_turn

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ROOT = Path(__file__).resolve().parents[2]
WAV_RATE = 48000
# The microphone's script (seconds from when it opens): the first turn, then a pause the
# responder answers after, then the person speaks over the answer (a barge-in).
TURN = (2.5, 4.5)
BARGE_IN = (6.0, 7.5)
END = 10.0
MODEL_END = 15.0

pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.timeout(300)]


def _speech(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = synthesize_turn(rng, make_identities(4)[2], "happy", seconds, WAV_RATE)[0]
    return 0.9 * x / np.abs(x).max()  # loud enough to pass the loop's echo gate


def write_wav(path: Path, speech: list[tuple[float, float]], seconds: float) -> Path:
    """A microphone script: demo speech at each (start, end), silence elsewhere."""
    audio = np.zeros(int(seconds * WAV_RATE), np.float32)
    for seed, (start, end) in enumerate(speech):
        lo = int(start * WAV_RATE)
        audio[lo : lo + int((end - start) * WAV_RATE)] = _speech(end - start, seed)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(WAV_RATE)
        f.writeframes((audio * 32767).astype(np.int16).tobytes())
    return path


def write_y4m(path: Path, fps: int = 10, seconds: float = 2.0) -> Path:
    """A demo-world face nodding a little, 240x240; Chromium reads only `C420` Y4M headers."""
    face = render_face(make_identities(8)[5], neutral_track(), 240)[0]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W240 H240 F{fps}:1 Ip A1:1 C420\n".encode())
        for k in range(int(fps * seconds)):
            image = np.roll(face, int(4 * np.sin(2 * np.pi * k / (fps * seconds))), axis=0)
            yuv = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            f.write(b"FRAME\n" + yuv.to_ndarray().tobytes())
    return path


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium whose microphone plays `speech` (see `write_wav`) once."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and DRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    drivers = []

    def launch(speech: list[tuple[float, float]], seconds: float):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        wav = write_wav(tmp_path / "turns.wav", speech, seconds)
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--mute-audio",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={write_y4m(tmp_path / 'face.y4m')}",
            f"--use-file-for-fake-audio-capture={wav}%noloop",
            "--allow-loopback-in-peer-connection",
            "--autoplay-policy=no-user-gesture-required",
        ):
            options.add_argument(arg)
        drivers.append(webdriver.Chrome(service=Service(DRIVER), options=options))
        drivers[-1].set_page_load_timeout(60)
        drivers[-1].set_script_timeout(30)
        return drivers[-1]

    yield launch
    for driver in drivers:
        driver.quit()


def start_server(tmp: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """`python -m vidchat.webapp` on a free port, the live media on loopback."""
    port = free_port()
    cmd = [sys.executable, "-m", "vidchat.webapp", "--port", str(port), "--device", "cpu"]
    cmd += ["--demo-data", str(tmp / "none"), "--ice-loopback", *flags]
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"} | {"TMPDIR": str(tmp)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    url, deadline = f"http://127.0.0.1:{port}", time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/live/config", timeout=5)
            return proc, url
        except OSError:
            assert proc.poll() is None, "the server exited"
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("the server did not start within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


# Runs in the page before Start: note when the microphone opens (the script's zero) and what
# was asked of it, then sample the remote video's colour and the remote audio's level.
RECORDER = """
window.samples = []; window.grabs = []; window.t0 = null;
const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (c) => {
  const s = await gum(c); window.t0 = performance.now(); window.asked = c; return s; };
const canvas = document.createElement('canvas');
const g = canvas.getContext('2d', {willReadFrequently: true});
let analyser = null, buf = null, n = 0;
setInterval(() => {
  const v = document.getElementById('remote');
  if (!v.srcObject || v.readyState < 2) return;
  if (!analyser) {
    const ctx = new AudioContext();
    analyser = ctx.createAnalyser(); analyser.fftSize = 1024;
    ctx.createMediaStreamSource(v.srcObject).connect(analyser);
    buf = new Float32Array(analyser.fftSize);
  }
  analyser.getFloatTimeDomainData(buf);
  const rms = Math.sqrt(buf.reduce((a, x) => a + x * x, 0) / buf.length);
  canvas.width = v.videoWidth; canvas.height = v.videoHeight;
  g.drawImage(v, 0, 0);
  const p = g.getImageData(v.videoWidth >> 1, v.videoHeight >> 1, 1, 1).data;
  window.samples.push([performance.now(), p[0], p[1], p[2], rms]);
  if (window.grabFrames && (n++ % 2 === 0)) window.grabs.push([rms, canvas.toDataURL('image/png')]);
}, 50);
"""


def _status(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "status").text


def _start(driver, url: str, until: str) -> str:
    """Open the live page, press Start and wait for a status line starting with `until`."""
    from selenium.webdriver.common.by import By

    driver.get(url + "/live?processing=0")
    driver.find_element(By.ID, "start").click()
    deadline = time.time() + 20
    while not (line := _status(driver)).startswith(until):
        assert time.time() < deadline and line == "connecting", line
        time.sleep(0.05)
    return line


def _wait_for_status(driver, want: str, meanwhile: str, seconds: float) -> float:
    """Wait until the page's status reads `want` (it may read only `meanwhile` before) -> the
    page's clock then, in seconds since the microphone opened."""
    deadline = time.time() + seconds
    while (line := _status(driver)) != want:
        assert time.time() < deadline and line == meanwhile, line
        time.sleep(0.05)
    return driver.execute_script("return (performance.now() - window.t0) / 1000")


def run_page(driver, url: str, seconds: float, grab: bool = False, stop: bool = True) -> dict:
    """Open the live page, press Start, wait for "connected", record `seconds` from when the
    microphone opened; a second visitor (another tab) is then told busy; press Stop (or wait
    for the server to end the session). -> the samples and what the pages showed."""
    from selenium.webdriver.common.by import By

    driver.get(url + "/live?processing=0")
    driver.execute_script(RECORDER + f"window.grabFrames = {str(grab).lower()};")
    driver.find_element(By.ID, "start").click()
    connected_at = _wait_for_status(driver, "connected", "connecting", 20)
    pair = driver.execute_async_script(SELECTED_PAIR)
    while driver.execute_script("return (performance.now() - window.t0) / 1000") < seconds:
        time.sleep(0.1)
    result = driver.execute_script(
        "return {t0: window.t0, samples: window.samples, grabs: window.grabs, asked: window.asked}"
    )
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    busy = _start(driver, url, "busy: ")
    driver.close()
    driver.switch_to.window(first)
    assert _status(driver) == "connected"  # the second visitor did not disturb the first
    if stop:
        driver.find_element(By.ID, "stop").click()
    ended_at = _wait_for_status(driver, "ended", "connected", 30)
    result.update(connected_at=connected_at, pair=pair, busy=busy, ended_at=ended_at)
    return result


SELECTED_PAIR = """
const done = arguments[arguments.length - 1];
pc.getStats().then((stats) => {
  const out = {remotes: []};  // every address the browser may send to
  stats.forEach((s) => {
    if (s.type === 'candidate-pair') out.remotes.push(stats.get(s.remoteCandidateId).address);
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      out.local = stats.get(s.localCandidateId).address;
      out.remote = stats.get(s.remoteCandidateId).address;
    }
  });
  done(out);
});
"""


def timeline(result: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> seconds since the microphone opened, "red" (answering) per sample, audio RMS."""
    s = np.asarray(result["samples"], float)
    t = (s[:, 0] - result["t0"]) / 1000.0
    return t, s[:, 1] > s[:, 3] + 60, s[:, 4]


@pytest.mark.timeout(240)
def test_the_page_turns_takes_and_barges_in_with_the_signal_responder(browser, tmp_path):
    driver = browser([TURN, BARGE_IN], END)
    proc, url = start_server(tmp_path, "--live-responder", "signal", "--live-max-seconds", "14")
    try:
        result = run_page(driver, url, END, stop=False)  # the time limit ends it
    finally:
        stop_server(proc)
    assert result["asked"]["audio"] == {
        "echoCancellation": False,
        "noiseSuppression": False,
        "autoGainControl": False,
    }
    pair = result["pair"]  # the media went over loopback, and nothing else was tried
    assert (pair["local"], pair["remote"], set(pair["remotes"])) == (
        "127.0.0.1",
        "127.0.0.1",
        {"127.0.0.1"},
    ), pair
    assert result["busy"].startswith("busy: ") and "\n" not in result["busy"]
    assert result["connected_at"] < TURN[0] - 0.5  # connected before the person speaks
    assert 13.5 < result["ended_at"] - result["connected_at"] < 15.5  # the page saw it end
    t, red, rms = timeline(result)
    assert len(t) > 100
    blue_while_speaking = ~red[(t > TURN[0] + 0.3) & (t < TURN[1])]
    assert blue_while_speaking.all(), "the responder answered while the person was speaking"
    answered = t[red & (t > TURN[1])][0]
    assert 0.3 < answered - TURN[1] < 2.2, f"answered {answered - TURN[1]:.2f} s after the turn"
    answering = red & (t > answered + 0.2) & (t < BARGE_IN[0])
    assert answering.sum() >= 0.8 * ((t > answered + 0.2) & (t < BARGE_IN[0])).sum()
    assert np.median(rms[answering]) > 0.1  # the 440 Hz tone plays with the red face
    assert np.median(rms[~red & (t > 0.5) & (t < TURN[1])]) < 0.01  # silence while listening
    listening = t[~red & (t > BARGE_IN[0])][0]
    assert 0.1 < listening - BARGE_IN[0] < 1.5, f"stopped {listening - BARGE_IN[0]:.2f} s in"
    assert listening < answered + 2.7  # the barge-in cut it: a whole answer is 3 s


@pytest.fixture(scope="module")
def gallery_and_reference():
    from vidchat.cli import compose
    from vidchat.eval.metrics.demo_oracle import identity_match
    from vidchat.inference.loading import load_pipeline

    pipe = load_pipeline(device="cpu")
    data = compose("train").data
    size = pipe.frame_size[0]
    people = make_identities(int(data.num_identities), seed=int(data.seed))
    gallery = {p.name: render_face(p, neutral_track(), size)[0] for p in people}
    reference = identity_match(pipe.reference_image(None)[None], gallery, people[0].name)
    return gallery, reference.details["nearest"]


@pytest.mark.timeout(300)
def test_the_page_shows_the_model_answering_with_its_reference_face(
    browser, tmp_path, gallery_and_reference
):
    from vidchat.eval.metrics.demo_oracle import identity_match
    from vidchat.media import read_image

    gallery, expected = gallery_and_reference
    driver = browser([TURN], MODEL_END)  # a CPU answers at a quarter of real time: wait longer
    proc, url = start_server(tmp_path)  # the default: the shipped model
    try:
        result = run_page(driver, url, MODEL_END, grab=True)
    finally:
        stop_server(proc)
    t, _, rms = timeline(result)
    assert rms[t > TURN[1]].max() > 0.02, "no answer voice reached the page"
    answer = [png for level, png in result["grabs"] if level > 0.01]
    assert len(answer) >= 4, f"{len(answer)} frames grabbed while the answer's voice played"
    frames = []
    for k, png in enumerate(answer):
        path = tmp_path / f"answer_{k}.png"
        path.write_bytes(base64.b64decode(png.split(",", 1)[1]))
        frames.append(read_image(path))
    assert frames[0].shape[:2] == gallery[expected].shape[:2]  # the model's 64 px, not scaled
    assert len({f.tobytes() for f in frames}) >= 2  # a moving face, not one still
    hits = [identity_match(f[None], gallery, expected).value for f in frames]
    assert np.mean(hits) >= 0.8, f"the reference {expected} on {np.mean(hits):.0%} of frames"
