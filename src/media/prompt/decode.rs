//! Turning an audio file's bytes into mono `f32` samples at the file's own rate.
//!
//! WAV goes through `hound` first (it is small, exact and covers integer and float PCM);
//! WAV encodings hound does not know (μ-law, A-law, ...) and MP3, OGG/Vorbis and FLAC go
//! through `symphonia`. The container is chosen by sniffing the first bytes, falling back
//! to the file extension, because operators do rename files.

use std::io::Cursor;
use std::path::Path;

use symphonia::core::audio::GenericAudioBufferRef;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// Mono audio at the file's sample rate, samples nominally in [-1.0, 1.0].
#[derive(Debug, Clone)]
pub(super) struct Decoded {
    pub rate: u32,
    pub samples: Vec<f32>,
}

/// Why a file could not be decoded; the caller adds the prompt name and path.
#[derive(Debug)]
pub(super) enum DecodeFailure {
    /// Not a format we read (or no audio track in it).
    Unsupported(String),
    /// A format we read, but the content is damaged or inconsistent.
    Corrupt(String),
}

/// The container, as far as the first bytes or the extension tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Container {
    Wav,
    Mp3,
    Ogg,
    Flac,
    Unknown,
}

impl Container {
    fn extension(self) -> Option<&'static str> {
        match self {
            Container::Wav => Some("wav"),
            Container::Mp3 => Some("mp3"),
            Container::Ogg => Some("ogg"),
            Container::Flac => Some("flac"),
            Container::Unknown => None,
        }
    }
}

fn has_wav_magic(bytes: &[u8]) -> bool {
    matches!(bytes.get(0..4), Some(b"RIFF" | b"RIFX" | b"RF64"))
        && bytes.get(8..12) == Some(b"WAVE")
}

/// Magic numbers first (they do not lie about renamed files), then the extension.
pub(super) fn sniff(bytes: &[u8], path: &Path) -> Container {
    let at = |range: std::ops::Range<usize>| bytes.get(range).unwrap_or(&[]);
    if has_wav_magic(bytes) {
        return Container::Wav;
    }
    match at(0..4) {
        b"OggS" => return Container::Ogg,
        b"fLaC" => return Container::Flac,
        _ => {}
    }
    if at(0..3) == b"ID3" {
        return Container::Mp3;
    }
    // An MPEG audio frame header starts with 11 set sync bits (ISO/IEC 11172-3 §2.4.2.3).
    if let [0xFF, b1, ..] = bytes {
        if b1 & 0xE0 == 0xE0 {
            return Container::Mp3;
        }
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("wav" | "wave") => Container::Wav,
        Some("mp3") => Container::Mp3,
        Some("ogg" | "oga") => Container::Ogg,
        Some("flac") => Container::Flac,
        _ => Container::Unknown,
    }
}

/// Decode a whole file already read into memory.
pub(super) fn decode(bytes: Vec<u8>, path: &Path) -> Result<Decoded, DecodeFailure> {
    let container = sniff(&bytes, path);
    match container {
        Container::Wav if !has_wav_magic(&bytes) => Err(DecodeFailure::Unsupported(
            "named like a WAV file but has no RIFF/WAVE header, so it is not a WAV file"
                .to_string(),
        )),
        Container::Wav => match decode_hound(&bytes) {
            Ok(decoded) => Ok(decoded),
            // hound only reads integer and float PCM; G.711 WAVs and other encodings go to
            // symphonia. Damaged files are reported as hound saw them, not retried, so a
            // truncated recording is not silently accepted.
            Err(hound::Error::Unsupported) => {
                decode_symphonia(bytes, container).map_err(|e| match e {
                    DecodeFailure::Unsupported(d) => DecodeFailure::Unsupported(format!(
                        "WAV with an encoding neither hound nor symphonia reads: {d}"
                    )),
                    other => other,
                })
            }
            Err(e) => Err(hound_failure(e)),
        },
        Container::Unknown => Err(DecodeFailure::Unsupported(
            "not a WAV, MP3, OGG/Vorbis or FLAC file (unrecognised header and extension)"
                .to_string(),
        )),
        _ => decode_symphonia(bytes, container),
    }
}

fn hound_failure(e: hound::Error) -> DecodeFailure {
    match e {
        hound::Error::Unsupported => {
            DecodeFailure::Unsupported("unsupported WAV encoding".to_string())
        }
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeFailure::Corrupt("WAV file is truncated (ends inside its data)".to_string())
        }
        other => DecodeFailure::Corrupt(format!("invalid WAV: {other}")),
    }
}

fn decode_hound(bytes: &[u8]) -> Result<Decoded, hound::Error> {
    let reader = hound::WavReader::new(Cursor::new(bytes))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    if channels == 0 || spec.sample_rate == 0 {
        return Err(hound::Error::FormatError(
            "header declares zero channels or a zero sample rate",
        ));
    }
    let samples = match spec.sample_format {
        hound::SampleFormat::Float => {
            let it = reader.into_samples::<f32>();
            downmix_interleaved(it, channels, 1.0)?
        }
        hound::SampleFormat::Int => {
            // hound hands out 8-bit (unsigned on disk) as signed, so every width is
            // two's complement with full scale 2^(bits-1).
            let bits = u32::from(spec.bits_per_sample).clamp(1, 32);
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            let it = reader.into_samples::<i32>().map(|s| s.map(|v| v as f32));
            downmix_interleaved(it, channels, scale)?
        }
    };
    Ok(Decoded {
        rate: spec.sample_rate,
        samples,
    })
}

/// Average interleaved channels into one, scaling to [-1, 1]; non-finite floats become 0
/// so one bad sample cannot smear NaN through the resampler.
fn downmix_interleaved<I>(samples: I, channels: usize, scale: f32) -> Result<Vec<f32>, hound::Error>
where
    I: Iterator<Item = Result<f32, hound::Error>>,
{
    let (lower, _) = samples.size_hint();
    let mut out = Vec::with_capacity(lower / channels);
    let mut acc = 0.0f32;
    let mut n = 0;
    let gain = scale / channels as f32;
    for s in samples {
        let v = s?;
        acc += if v.is_finite() { v } else { 0.0 };
        n += 1;
        if n == channels {
            out.push(acc * gain);
            acc = 0.0;
            n = 0;
        }
    }
    Ok(out)
}

fn sym_failure(e: SymError) -> DecodeFailure {
    match e {
        SymError::Unsupported(what) => DecodeFailure::Unsupported(what.to_string()),
        other => DecodeFailure::Corrupt(other.to_string()),
    }
}

fn decode_symphonia(bytes: Vec<u8>, container: Container) -> Result<Decoded, DecodeFailure> {
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = container.extension() {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymError::Unsupported(_) => DecodeFailure::Unsupported(
                "no supported audio stream found (not WAV, MP3, OGG/Vorbis or FLAC)".to_string(),
            ),
            other => sym_failure(other),
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| DecodeFailure::Unsupported("the file has no audio track".to_string()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| {
            DecodeFailure::Unsupported("the audio track's codec is not known".to_string())
        })?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &Default::default())
        .map_err(sym_failure)?;

    let mut rate: Option<u32> = params.sample_rate;
    let mut samples = Vec::new();
    let mut planes: Vec<Vec<f32>> = Vec::new();
    let (mut good, mut bad) = (0usize, 0usize);
    let mut last_error = String::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A chained OGG stream changes track layout; a prompt is the first stream.
            Err(SymError::ResetRequired) => break,
            // A cut-off tail after good audio is common with hand-edited files; keep what
            // decoded rather than refuse the prompt.
            Err(SymError::IoError(_)) if good > 0 => break,
            Err(e) => return Err(sym_failure(e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                good += 1;
                let buf_rate = buf.spec().rate();
                match rate {
                    Some(r) if r != buf_rate && buf_rate != 0 => {
                        return Err(DecodeFailure::Unsupported(format!(
                            "sample rate changes mid-stream ({r} Hz to {buf_rate} Hz)"
                        )));
                    }
                    None => rate = Some(buf_rate),
                    _ => {}
                }
                downmix_planar(&buf, &mut planes, &mut samples);
            }
            Err(SymError::DecodeError(msg)) => {
                bad += 1;
                last_error = msg.to_string();
            }
            Err(SymError::IoError(e)) => {
                bad += 1;
                last_error = e.to_string();
            }
            Err(e) => return Err(sym_failure(e)),
        }
    }
    if bad > 0 {
        if good == 0 {
            return Err(DecodeFailure::Corrupt(format!(
                "none of {bad} audio packets could be decoded: {last_error}"
            )));
        }
        tracing::warn!(bad, good, error = %last_error, "skipped undecodable packets in prompt");
    }
    let rate = rate
        .filter(|&r| r > 0)
        .ok_or_else(|| DecodeFailure::Corrupt("the stream declares no sample rate".to_string()))?;
    Ok(Decoded { rate, samples })
}

fn downmix_planar(buf: &GenericAudioBufferRef<'_>, planes: &mut Vec<Vec<f32>>, out: &mut Vec<f32>) {
    buf.copy_to_vecs_planar::<f32>(planes);
    let Some((first, rest)) = planes.split_first() else {
        return;
    };
    let gain = 1.0 / (rest.len() + 1) as f32;
    out.reserve(first.len());
    for (i, &s0) in first.iter().enumerate() {
        let sum: f32 = s0 + rest.iter().filter_map(|p| p.get(i)).sum::<f32>();
        out.push(if sum.is_finite() { sum * gain } else { 0.0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_prefers_magic_over_extension() {
        let p = Path::new("x.wav");
        assert_eq!(sniff(b"OggS\0\0\0\0", p), Container::Ogg);
        assert_eq!(sniff(b"fLaC\0\0\0\0", p), Container::Flac);
        assert_eq!(sniff(b"ID3\x04\0\0", p), Container::Mp3);
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x00], p), Container::Mp3);
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WAVEfmt ", Path::new("x.mp3")),
            Container::Wav
        );
        assert_eq!(sniff(b"hello", Path::new("X.FLAC")), Container::Flac);
        assert_eq!(sniff(b"hello", Path::new("x.txt")), Container::Unknown);
        assert_eq!(sniff(b"", Path::new("noext")), Container::Unknown);
    }
}
