#!/bin/sh
# Regenerates tpswitch's default prompt set (see README.md in this folder).
#
# Needs: espeak-ng and sox (Debian: apt-get install espeak-ng sox).
# Output: 8 kHz mono 16-bit PCM WAV, the rate G.711 uses, so loading needs no
# resampling. Output is deterministic (sox dither off), so re-running only changes
# files whose text or settings changed.
set -eu

cd "$(dirname "$0")"
VOICE="${VOICE:-en-us}"      # espeak-ng voice
SPEED="${SPEED:-150}"        # words per minute
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT INT TERM

# Speech chain: remove rumble, convert to 8 kHz (sox's `rate -v` has its own
# anti-aliasing filter), trim leading and trailing silence so prompts start at once
# and clips join without gaps, then normalise peaks to -3 dBFS (headroom for G.711).
TRIM="silence 1 0.005 -50d reverse silence 1 0.005 -50d reverse"

# say OUT.wav "text" [extra sox effects...]
say() {
    out="$1"
    text="$2"
    shift 2
    espeak-ng -v "$VOICE" -s "$SPEED" -w "$TMP/raw.wav" "$text"
    sox -D "$TMP/raw.wav" -c 1 -b 16 -e signed-integer "$out" \
        highpass 100 rate -v 8000 $TRIM norm -3 "$@"
    echo "$out: $text"
}

# Word clips end with 60 ms of silence: the natural gap between spoken words, so
# "press" + "num_4" + "for" + "num_70" + "num_2" + "hours" sounds like one sentence.
clip() {
    say "clips/$1.wav" "$2" pad 0 0.06
}

mkdir -p clips

say welcome.wav "Welcome to the contact centre presence line."
say resource_lookup_error.wav "Sorry, we could not find an agent profile for the number you are calling from. Goodbye."
say preset_hours.wav "Press 1 to go online for 8 hours, 2 for 24 hours, 3 for 48 hours, or 4 for 72 hours. Press 9 to enter a custom number of hours. Press 0 to go offline."
# Two digits end the entry by themselves; # ends it after one (the menu acts
# on the second digit, so asking for # after two would be a lie).
say custom_hours.wav "Enter the number of hours, from 1 to 99. After a single digit, press the pound key."
say invalid_input.wav "Sorry, that is not a valid choice."
say online.wav "You are now online."
say offline.wav "You are now offline. Goodbye."
say enter_extension.wav "Please enter your extension, then press the pound key."
# Lower-case "pin" so espeak says the word, not the letters P-I-N.
say enter_pin.wav "Please enter your pin."
say wrong_pin.wav "That pin is not correct."
say queue_greeting.wav "Thank you for calling. Please hold while we connect you to an agent."
say agent_whisper.wav "Customer call. Press 1 to accept."
say queue_unavailable.wav "Sorry, no agent is available to take your call. Please try again later. Goodbye."
say not_responding.wav "You missed several calls in a row, so you are now set to not responding. Call this number to go online again."

n=0
for word in zero one two three four five six seven eight nine ten eleven twelve \
    thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty; do
    clip "num_$n" "$word"
    n=$((n + 1))
done
clip num_30 thirty
clip num_40 forty
clip num_50 fifty
clip num_60 sixty
clip num_70 seventy
clip num_80 eighty
clip num_90 ninety
clip press "press"
clip for "for"
clip hours "hours"
clip hour "hour"
clip custom_option "Press 9 to enter a custom number of hours."
clip offline_option "Press 0 to go offline."
clip goodbye "Goodbye."

# Hold music: a soft I-vi-IV-V progression (C, Am, F, G), 2.25 s per chord, 9 s in
# all. Each chord is a strummed plucked-string chord (low-passed to keep it mellow)
# over a quiet sine pad with slow fades. Chords ring 1 s past their slot; the last
# chord's ring-out is folded back onto the start of the file, so playing the file in a
# loop sounds exactly like one chord moving to the next: no click, no gap.
RATE=48000   # sox's pluck needs 44.1-48 kHz
RING=3.25
chord() { # chord OUT.wav root third fifth bass   (note names, e.g. C4)
    # Options before -n shape the null input (one channel per note), those after it
    # the output; `remix -` mixes the notes down to mono.
    sox -D -r $RATE -c 4 -n -c 1 "$TMP/pluck.wav" synth $RING \
        pluck "$2" pluck "$3" pluck "$4" pluck "$5" \
        delay 0.09 0.18 0.27 0 remix - lowpass 2500 fade q 0.005 $RING 1.2
    sox -D -r $RATE -c 3 -n -c 1 "$TMP/pad.wav" synth $RING \
        sine "$2" sine "$3" sine "$4" remix - fade h 0.6 $RING 1.4 vol 0.35
    sox -D -m -v 1 "$TMP/pluck.wav" -v 1 "$TMP/pad.wav" "$1"
}
chord "$TMP/c1.wav" C4 E4 G4 C3
chord "$TMP/c2.wav" A3 C4 E4 A2
chord "$TMP/c3.wav" F3 A3 C4 F2
chord "$TMP/c4.wav" G3 B3 D4 G2
sox -D "$TMP/c2.wav" "$TMP/c2p.wav" pad 2.25
sox -D "$TMP/c3.wav" "$TMP/c3p.wav" pad 4.5
sox -D "$TMP/c4.wav" "$TMP/c4p.wav" pad 6.75
sox -D -m -v 1 "$TMP/c1.wav" -v 1 "$TMP/c2p.wav" -v 1 "$TMP/c3p.wav" -v 1 "$TMP/c4p.wav" \
    "$TMP/song.wav"
# Resample the whole ring-out before cutting so the filter sees continuous audio
# across the loop point; 9 s at 8 kHz is exactly 72000 samples.
sox -D "$TMP/song.wav" -b 16 "$TMP/song8k.wav" rate -v 8000
sox -D "$TMP/song8k.wav" "$TMP/body.wav" trim 0 72000s
sox -D "$TMP/song8k.wav" "$TMP/tail.wav" trim 72000s
sox -D -m -v 1 "$TMP/body.wav" -v 1 "$TMP/tail.wav" -c 1 -b 16 -e signed-integer \
    hold_music.wav norm -6
echo "hold_music.wav: music, 9 s loop"

du -ch ./*.wav clips/*.wav | tail -1
