//! ITU-T G.711 μ-law and A-law companding.
//!
//! Encoding follows the G.711 segment/mantissa rule: μ-law works on a 16-bit sample rounded to
//! 14 bits, A-law on one rounded to 13 bits, each split into eight segments with a 4-bit
//! mantissa (rounding, not truncation, is what sox does). Decoding and cross-law transcoding go through 256-entry
//! tables built at compile time. Every function here is checked against sox-made references for
//! all 65 536 inputs (see `testdata/README.md`). The law is chosen by the program's one
//! [`Codec`] (PCMU is μ-law, PCMA is A-law); this module only owns the tables.

use super::codec::Codec;

/// μ-law magnitude clip on the 14-bit scale: 8159 + bias 33 = 8192, the end of segment 7.
const ULAW_CLIP: i32 = 8159;
/// μ-law bias on the 14-bit scale (G.711 adds 33 so that segment ends are powers of two).
const ULAW_BIAS: i32 = 33;

/// Saturate a rounded sample at the top of its reduced range (only 32766/32767 and friends
/// round past it).
const fn to_bits(v: i32, max: i32) -> i32 {
    if v > max {
        max
    } else {
        v
    }
}

/// Encode one 16-bit linear sample as μ-law.
pub const fn linear_to_ulaw(s: i16) -> u8 {
    // G.711 μ-law is defined on 14-bit samples. We round 16 -> 14 bits to nearest (half up,
    // saturating at the top) as sox does, rather than truncating like the old Sun reference
    // code: it halves the worst-case error of that step and matches our sox references.
    let v = to_bits((s as i32 + 2) >> 2, 8191);
    let (mag, mask) = if v < 0 { (-v, 0x7F) } else { (v, 0xFF) };
    let mag = if mag > ULAW_CLIP { ULAW_CLIP } else { mag } + ULAW_BIAS;
    // mag is in 33..=8192: its top bit is at 5..=13; segment 0 ends at 0x3F (top bit 5).
    let top = 31 - (mag as u32).leading_zeros() as i32;
    let seg = top - 5;
    if seg >= 8 {
        // Only the clipped maximum lands here: the largest code of the sign.
        return (0x7F ^ mask) as u8;
    }
    let code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F);
    (code ^ mask) as u8
}

/// Decode one μ-law code to a 16-bit linear sample (computed; use [`ulaw_to_linear`] for speed).
const fn ulaw_decode_calc(u: u8) -> i16 {
    // Codes are sent inverted (G.711 §2) so that silence has many 1-bits.
    let u = !u as i32;
    let t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);
    if u & 0x80 != 0 {
        (0x84 - t) as i16
    } else {
        (t - 0x84) as i16
    }
}

/// Encode one 16-bit linear sample as A-law.
pub const fn linear_to_alaw(s: i16) -> u8 {
    // A-law works on 13 bits (rounded to nearest like μ-law above); even bits are inverted on
    // the wire (mask 0x55, G.711 §3).
    let v = to_bits((s as i32 + 4) >> 3, 4095);
    let (mag, mask) = if v >= 0 { (v, 0xD5) } else { (-v - 1, 0x55) };
    // Segment 0 and 1 share a step size; segment n >= 1 starts at 0x20 << (n - 1).
    let seg = if mag < 0x20 {
        0
    } else {
        31 - (mag as u32).leading_zeros() as i32 - 4
    };
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let shift = if seg < 2 { 1 } else { seg };
    let code = (seg << 4) | ((mag >> shift) & 0x0F);
    (code ^ mask) as u8
}

/// Decode one A-law code to a 16-bit linear sample (computed; use [`alaw_to_linear`] for speed).
const fn alaw_decode_calc(a: u8) -> i16 {
    let a = (a ^ 0x55) as i32;
    let seg = (a & 0x70) >> 4;
    let mut t = (a & 0x0F) << 4;
    // Reconstruct at the middle of the quantisation interval (+8, or +0x108 with the implicit
    // leading one for segments >= 1).
    t = match seg {
        0 => t + 8,
        1 => t + 0x108,
        _ => (t + 0x108) << (seg - 1),
    };
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

const fn build_decode(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_decode_calc(i as u8)
        } else {
            ulaw_decode_calc(i as u8)
        };
        i += 1;
    }
    table
}

const fn build_transcode(from_alaw: bool) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        // Decode-then-encode: both steps are exact, so this equals what sox produces.
        table[i] = if from_alaw {
            linear_to_ulaw(alaw_decode_calc(i as u8))
        } else {
            linear_to_alaw(ulaw_decode_calc(i as u8))
        };
        i += 1;
    }
    table
}

static ULAW_DECODE: [i16; 256] = build_decode(false);
static ALAW_DECODE: [i16; 256] = build_decode(true);
static ULAW_TO_ALAW: [u8; 256] = build_transcode(false);
static ALAW_TO_ULAW: [u8; 256] = build_transcode(true);

/// Decode one μ-law code (table lookup).
#[inline]
pub fn ulaw_to_linear(u: u8) -> i16 {
    ULAW_DECODE[usize::from(u)]
}

/// Decode one A-law code (table lookup).
#[inline]
pub fn alaw_to_linear(a: u8) -> i16 {
    ALAW_DECODE[usize::from(a)]
}

/// Transcode μ-law to A-law for bridging a PCMU leg to a PCMA leg without a linear step.
#[inline]
pub fn ulaw_to_alaw(u: u8) -> u8 {
    ULAW_TO_ALAW[usize::from(u)]
}

/// Transcode A-law to μ-law.
#[inline]
pub fn alaw_to_ulaw(a: u8) -> u8 {
    ALAW_TO_ULAW[usize::from(a)]
}

/// Append the μ-law encoding of `samples` to `out`.
pub fn encode_ulaw(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| linear_to_ulaw(s)));
}

/// Append the A-law encoding of `samples` to `out`.
pub fn encode_alaw(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| linear_to_alaw(s)));
}

/// Append the linear decoding of μ-law `codes` to `out`.
pub fn decode_ulaw(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|&c| ulaw_to_linear(c)));
}

/// Append the linear decoding of A-law `codes` to `out`.
pub fn decode_alaw(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|&c| alaw_to_linear(c)));
}

/// Encode with the codec's law (PCMU is μ-law, PCMA is A-law).
pub fn encode(codec: Codec, samples: &[i16], out: &mut Vec<u8>) {
    match codec {
        Codec::Pcmu => encode_ulaw(samples, out),
        Codec::Pcma => encode_alaw(samples, out),
    }
}

/// Decode with the codec's law.
pub fn decode(codec: Codec, codes: &[u8], out: &mut Vec<i16>) {
    match codec {
        Codec::Pcmu => decode_ulaw(codes, out),
        Codec::Pcma => decode_alaw(codes, out),
    }
}

/// Transcode a payload in place from one codec to another (no-op when they match).
pub fn transcode_in_place(from: Codec, to: Codec, codes: &mut [u8]) {
    let table = match (from, to) {
        (Codec::Pcmu, Codec::Pcma) => &ULAW_TO_ALAW,
        (Codec::Pcma, Codec::Pcmu) => &ALAW_TO_ULAW,
        _ => return,
    };
    for c in codes {
        *c = table[usize::from(*c)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expand a `code run_length` file into one code per input, -32768 upward.
    fn expand_rle(text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(65536);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut it = line.split_whitespace();
            let code: u8 = it.next().unwrap().parse().unwrap();
            let run: usize = it.next().unwrap().parse().unwrap();
            out.extend(std::iter::repeat_n(code, run));
        }
        assert_eq!(out.len(), 65536, "reference must cover every i16");
        out
    }

    fn read_list<T: std::str::FromStr>(text: &str) -> Vec<T>
    where
        T::Err: std::fmt::Debug,
    {
        let v: Vec<T> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert_eq!(v.len(), 256);
        v
    }

    #[test]
    fn ulaw_encode_matches_sox_for_every_sample() {
        let want = expand_rle(include_str!("testdata/g711_ulaw_encode.rle"));
        for (i, s) in (i16::MIN..=i16::MAX).enumerate() {
            assert_eq!(linear_to_ulaw(s), want[i], "sample {s}");
        }
    }

    #[test]
    fn alaw_encode_matches_sox_for_every_sample() {
        let want = expand_rle(include_str!("testdata/g711_alaw_encode.rle"));
        for (i, s) in (i16::MIN..=i16::MAX).enumerate() {
            assert_eq!(linear_to_alaw(s), want[i], "sample {s}");
        }
    }

    #[test]
    fn decode_tables_match_sox() {
        let ul: Vec<i16> = read_list(include_str!("testdata/g711_ulaw_decode.txt"));
        let al: Vec<i16> = read_list(include_str!("testdata/g711_alaw_decode.txt"));
        for c in 0..=255u8 {
            assert_eq!(ulaw_to_linear(c), ul[usize::from(c)], "u-law code {c}");
            assert_eq!(alaw_to_linear(c), al[usize::from(c)], "A-law code {c}");
        }
    }

    #[test]
    fn transcode_tables_match_sox() {
        let u2a: Vec<u8> = read_list(include_str!("testdata/g711_ulaw_to_alaw.txt"));
        let a2u: Vec<u8> = read_list(include_str!("testdata/g711_alaw_to_ulaw.txt"));
        for c in 0..=255u8 {
            assert_eq!(ulaw_to_alaw(c), u2a[usize::from(c)], "u-law code {c}");
            assert_eq!(alaw_to_ulaw(c), a2u[usize::from(c)], "A-law code {c}");
        }
    }

    #[test]
    fn well_known_codes() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
    }

    #[test]
    fn decoded_values_are_fixed_points_of_encode() {
        // Re-encoding a decoded value must give back the same code (except μ-law's negative
        // zero 0x7F, which decodes to 0 and re-encodes as positive zero 0xFF).
        for c in 0..=255u8 {
            if c != 0x7F {
                assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), c, "u-law {c:#04x}");
            }
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law {c:#04x}");
        }
    }

    #[test]
    fn slice_helpers_append_and_round_trip() {
        let samples: Vec<i16> = (-8..8).map(|i| i * 4000).collect();
        for codec in Codec::ALL {
            let mut codes = vec![0xAB];
            encode(codec, &samples, &mut codes);
            assert_eq!(codes.len(), samples.len() + 1, "appends, keeps existing");
            let mut back = Vec::new();
            decode(codec, &codes[1..], &mut back);
            for (a, b) in samples.iter().zip(&back) {
                // Worst-case quantisation error in the top segment is half a step of 1024.
                assert!(
                    (i32::from(*a) - i32::from(*b)).abs() <= 1024,
                    "{codec} {a} -> {b}"
                );
            }
        }
        let mut u = Vec::new();
        encode_ulaw(&samples, &mut u);
        let mut a = u.clone();
        transcode_in_place(Codec::Pcmu, Codec::Pcma, &mut a);
        let expected: Vec<u8> = u.iter().map(|&c| ulaw_to_alaw(c)).collect();
        assert_eq!(a, expected);
        let mut same = u.clone();
        transcode_in_place(Codec::Pcmu, Codec::Pcmu, &mut same);
        assert_eq!(same, u);
    }
}
