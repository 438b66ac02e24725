#!/bin/sh
# Regenerates tpswitch's default prompt set (see README.md in this folder).
#
# Needs festival with the CMU ARCTIC "slt" HTS voice, and sox (Debian main:
#   apt-get install festival festvox-us-slt-hts sox)
# The voice's data ships in the package, so nothing is downloaded while generating.
# (docs/decisions.md says why this voice: its licence is plain, a neural voice's was not.)
# Output: 8 kHz mono 16-bit PCM WAV, the rate G.711 uses, so loading needs no
# resampling, at telephone levels (speech about -20 dBFS RMS, peaks at most -3 dBFS;
# levels.sh checks every file and generate.sh runs it last). Output is deterministic
# (the HTS voice draws no random noise, sox dither is off), so re-running only changes
# files whose text or settings changed.
set -eu

cd "$(dirname "$0")"
# Pace: the voice's own, about 180 words a minute over the prompts, within the 150-180
# usual for telephone prompts. STRETCH > 1 slows it (festival's Duration_Stretch).
STRETCH="${STRETCH:-1.0}"
TARGET_RMS=-20   # dBFS RMS of the trimmed speech: the usual level for telephone prompts
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT INT TERM

# Speech chain: remove rumble, convert to 8 kHz (sox's `rate -v` has its own
# anti-aliasing filter), trim leading and trailing silence so prompts start at once
# and clips join without gaps.
TRIM="silence 1 0.005 -50d reverse silence 1 0.005 -50d reverse"
# Level: a look-ahead limiter (sox compand: 0.5 ms attack, 0.5 ms delay) that leaves
# speech below -10 dBFS straight and bends louder peaks down (slope 0.3), with gain
# towards TARGET_RMS. A synthetic voice has 20-23 dB between its RMS and its loudest peaks,
# more than the 17 dB the telephone levels leave, so without limiting either the peaks
# pass -3 dBFS or the speech stays quiet. The gain is compand's own (applied after its
# curve, in floating point), so nothing clips on the way; the curve's points are
# written in input levels.
level() { # level IN OUT GAIN_DB
    knee="$(awk -v g="$3" 'BEGIN { k = -10 - g; if (k > -0.2) k = -0.2; printf "%.2f", k }')"
    top="$(awk -v k="$knee" 'BEGIN { printf "%.2f", 0.7 * k }')"
    sox -D "$1" "$2" compand 0.0005,0.08 "3:-90,-90,$knee,$knee,0,$top" "$3" -90 0.0005
}

# stat FILE NAME: one value of `sox stats` ("RMS lev dB", "Pk lev dB").
stat() {
    sox "$1" -n stats 2>&1 | awk -v k="$2" 'index($0, k) == 1 { print $NF }'
}

# say OUT.wav "text" [extra sox effects...]
say() {
    out="$1"
    text="$2"
    shift 2
    printf '%s\n' "$text" | text2wave -o "$TMP/raw.wav" \
        -eval '(voice_cmu_us_slt_arctic_hts)' \
        -eval "(Parameter.set 'Duration_Stretch $STRETCH)"
    sox -D "$TMP/raw.wav" -c 1 -b 16 -e signed-integer "$TMP/8k.wav" \
        highpass 100 rate -v 8000 $TRIM
    # The limiter takes some RMS with the peaks: correct the gain and level again
    # until within 1 dB of the target (at most 4 passes).
    rms="$(stat "$TMP/8k.wav" "RMS lev dB")"
    gain=0
    pass=0
    while [ "$pass" -lt 4 ]; do
        gain="$(awk -v g="$gain" -v t="$TARGET_RMS" -v r="$rms" 'BEGIN { printf "%.2f", g + t - r }')"
        level "$TMP/8k.wav" "$TMP/lev.wav" "$gain"
        rms="$(stat "$TMP/lev.wav" "RMS lev dB")"
        awk -v t="$TARGET_RMS" -v r="$rms" 'BEGIN { d = t - r; exit !(d > 1 || d < -1) }' || break
        pass=$((pass + 1))
    done
    # A transient faster than the limiter can leave a peak over -3 dBFS; only then
    # scale the whole prompt down.
    pk="$(stat "$TMP/lev.wav" "Pk lev dB")"
    if awk -v p="$pk" 'BEGIN { exit !(p > -3) }'; then
        sox -D "$TMP/lev.wav" "$TMP/lev2.wav" norm -3
        mv "$TMP/lev2.wav" "$TMP/lev.wav"
    fi
    sox -D "$TMP/lev.wav" "$out" "$@"
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
# Lower-case "pin" so the voice says the word, not the letters P-I-N.
say enter_pin.wav "Please enter your pin."
say wrong_pin.wav "That pin is not correct."
say queue_greeting.wav "Thank you for calling. Please hold while we connect you to an agent."
say agent_whisper.wav "Customer call. Press 1 to accept."
say queue_unavailable.wav "Sorry, no agent is available to take your call. Please try again later. Goodbye."
say not_responding.wav "You missed several calls in a row, so you are now set to not responding. Call this number to go online again."
# The trunk's caller_id_trust wants a PIN for this caller ID and the user has none.
say caller_id_refused.wav "Sorry, a pin is needed to sign in from this number, and none is set for you. Please ask your administrator. Goodbye."
# Nailed-up agents (users.connection = "nailed-up") hear this after "You are now online".
say stay_on_line.wav "Stay on the line to take customer calls. A tone announces each customer. Hanging up ends your online time."

# The tone that announces a customer on a nailed-up line: two 120 ms beeps at 440 Hz,
# 80 ms apart (a "zip tone"), 5 ms fades so they do not click; a sine's RMS is 3 dB
# under its peak, so -17 dBFS peaks put the tone at the speech level.
sox -D -n -r 8000 -c 1 -b 16 -e signed-integer "$TMP/beep.wav" synth 0.12 sine 440 \
    fade q 0.005 0.12 0.005 vol -17dB
sox -D "$TMP/beep.wav" "$TMP/gap.wav" pad 0 0.08
sox -D "$TMP/gap.wav" "$TMP/beep.wav" line_tone.wav pad 0 0.06
echo "line_tone.wav: two beeps"

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
# The status of an agent already online ("You are online until" "5" "PM"
# "tomorrow" "for" "3" "more hours") and the options that follow it.
clip online_until "You are online until"
clip am "A M"
clip pm "P M"
clip oh "oh"
clip tomorrow "tomorrow"
clip on "on"
for day in monday tuesday wednesday thursday friday saturday sunday; do
    clip "$day" "$day"
done
clip more_minute "more minute."
clip more_minutes "more minutes."
clip more_hour "more hour."
clip more_hours "more hours."
clip more_days "more days."
clip to_add "to add"
clip new_hours_option "Press 9 to set new hours."
clip extended "Your online time is extended."
# The reminder before a window ends: "Your online time ends in" "15"
# "minutes." "Press 1 to stay online for another" "8" "hours," "or hang up."
clip ends_in "Your online time ends in"
clip minute "minute."
clip minutes "minutes."
clip stay_online "Press 1 to stay online for another"
clip or_hang_up "or hang up."
# An online nailed-up agent's extra option: keep the window, take the call as their line.
clip keep_time_option "Press the pound key to keep your time and take calls."

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
./levels.sh
