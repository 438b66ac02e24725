#!/bin/sh
# Checks the telephone levels of the prompt set: prints each file's peak and RMS and
# fails when one is out of range. Needs sox.
#
# Speech: peak at most -3 dBFS (headroom for G.711, whose loudest code is 0 dBFS, and
# for the sample-rate filters of phones and gateways), RMS -20 dBFS +/- 3 dB. RMS is
# measured with leading and trailing silence trimmed, so a clip's 60 ms of closing
# silence does not count against it. Every file: 8 kHz, mono, 16-bit PCM.
# hold_music.wav is music, not speech: only its peak is checked.
#
# Usage: prompts/levels.sh [FILE.wav...]   (default: every prompt and clip)
set -eu

cd "$(dirname "$0")"
[ $# -gt 0 ] || set -- ./*.wav clips/*.wav
TRIM="silence 1 0.005 -50d reverse silence 1 0.005 -50d reverse"
bad=0
printf '%-32s %8s %8s %7s\n' file "peak dB" "RMS dB" "s"
for f in "$@"; do
    fmt="$(soxi -r "$f") $(soxi -c "$f") $(soxi -b "$f") $(soxi -e "$f")"
    peak="$(sox "$f" -n stats 2>&1 | awk '/^Pk lev dB/ { print $NF }')"
    rms="$(sox "$f" -n $TRIM stats 2>&1 | awk '/^RMS lev dB/ { print $NF }')"
    secs="$(soxi -D "$f")"
    verdict="$(awk -v p="$peak" -v r="$rms" -v music="$(case "$f" in *hold_music.wav) echo 1 ;; *) echo 0 ;; esac)" 'BEGIN {
        if (p > -3) { print "peak above -3 dBFS"; exit }
        if (!music && (r < -23 || r > -17)) { print "RMS outside -20 +/- 3 dBFS"; exit }
    }')"
    if [ "$fmt" != "8000 1 16 Signed Integer PCM" ]; then
        verdict="not 8 kHz mono 16-bit PCM ($fmt)"
    fi
    printf '%-32s %8s %8s %7.2f %s\n' "$f" "$peak" "$rms" "$secs" "$verdict"
    [ -z "$verdict" ] || bad=$((bad + 1))
done
if [ "$bad" -gt 0 ]; then
    echo "levels: $bad file(s) out of range" >&2
    exit 1
fi
echo "levels: $# files within range"
