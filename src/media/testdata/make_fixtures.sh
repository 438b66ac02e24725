#!/bin/sh
# Regenerates the tiny decoder fixtures used by src/media/prompt/tests.rs.
# Each is 0.5 s of a 1 kHz sine at half scale. Needs sox with mp3 support
# (Debian: apt-get install sox libsox-fmt-mp3).
set -eu
cd "$(dirname "$0")"
sox -n -r 22050 -c 1 tone_1k.mp3 synth 0.5 sine 1000 vol 0.5
sox -n -r 48000 -c 2 tone_1k.ogg synth 0.5 sine 1000 vol 0.5
sox -n -r 16000 -c 1 -b 16 tone_1k.flac synth 0.5 sine 1000 vol 0.5
sox -n -r 8000 -c 1 -e u-law tone_1k_ulaw.wav synth 0.5 sine 1000 vol 0.5
sox -n -r 8000 -c 1 -e a-law tone_1k_alaw.wav synth 0.5 sine 1000 vol 0.5
ls -l tone_1k*
