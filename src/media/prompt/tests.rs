use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use super::*;

fn write_wav(path: &Path, spec: hound::WavSpec, frames: usize, f: impl Fn(usize, u16) -> f64) {
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        for ch in 0..spec.channels {
            let v = f(i, ch);
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => w.write_sample(v as f32).unwrap(),
                (_, 8) => w
                    .write_sample((v * 128.0).round().clamp(-128.0, 127.0) as i8)
                    .unwrap(),
                (_, 16) => w
                    .write_sample((v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
                    .unwrap(),
                (_, bits) => {
                    let full = f64::from(1u32 << (bits - 1));
                    w.write_sample((v * full).round().clamp(-full, full - 1.0) as i32)
                        .unwrap()
                }
            }
        }
    }
    w.finalize().unwrap();
}

fn spec(rate: u32, channels: u16, bits: u16, float: bool) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    }
}

fn sine(freq: f64, rate: u32) -> impl Fn(usize, u16) -> f64 {
    move |i, _| 0.5 * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()
}

/// Reference G.711 μ-law decoder (G.711 §2, inverse of the encoder) for checking content.
fn ulaw_to_linear(b: u8) -> i32 {
    let b = !b;
    let exp = i32::from((b >> 4) & 7);
    let mant = i32::from(b & 0x0F);
    let mag = (((mant << 3) + 0x84) << exp) - 0x84;
    if b & 0x80 != 0 {
        -mag
    } else {
        mag
    }
}

fn decoded_ulaw(p: &Prompt) -> Vec<i32> {
    p.frames(Codec::Pcmu)
        .iter()
        .map(|&b| ulaw_to_linear(b))
        .collect()
}

fn zero_crossings(x: &[i32]) -> usize {
    x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
}

/// Checks a loaded 1 kHz half-scale tone: right pitch and level in the middle part.
fn assert_1k_tone(p: &Prompt, seconds: f64) {
    let pcm = decoded_ulaw(p);
    let n = (seconds * 8000.0) as usize;
    let mid = &pcm[n / 5..n * 4 / 5];
    let expect = 2.0 * 1000.0 * mid.len() as f64 / 8000.0;
    let zc = zero_crossings(mid) as f64;
    assert!(
        (zc - expect).abs() <= 3.0,
        "{}: {zc} zero crossings, expected {expect}",
        p.name()
    );
    let peak = mid.iter().map(|v| v.abs()).max().unwrap();
    assert!(
        (14_000..=18_500).contains(&peak),
        "{}: peak {peak}",
        p.name()
    );
}

fn testdata(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/media/testdata")
        .join(file)
}

#[test]
fn eight_bit_mono_8k_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p8.wav");
    // 800 samples at 8 kHz = 100 ms = 5 frames; 0.5 in 8-bit is 64/128.
    write_wav(&path, spec(8000, 1, 8, false), 800, |_, _| 0.5);
    let p = Prompt::load("p8", &path).unwrap();
    assert_eq!(p.name(), "p8");
    assert_eq!(p.frame_count(), 5);
    assert_eq!(p.duration(), Duration::from_millis(100));
    let f = p.frame(Codec::Pcmu, 4).unwrap();
    assert!(f.iter().all(|&b| b == linear_to_ulaw(16384)));
    let f = p.frame(Codec::Pcma, 0).unwrap();
    assert!(f.iter().all(|&b| b == linear_to_alaw(16384)));
}

#[test]
fn sixteen_bit_44k1_stereo_is_downmixed_and_resampled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.wav");
    // Left carries the tone, right is silent: the mono mix is the tone at half level.
    let tone = sine(1000.0, 44_100);
    write_wav(&path, spec(44_100, 2, 16, false), 22_050, move |i, ch| {
        if ch == 0 {
            2.0 * tone(i, ch)
        } else {
            0.0
        }
    });
    let p = Prompt::load("s", &path).unwrap();
    // 0.5 s -> 4000 samples -> 25 frames.
    assert_eq!(p.frame_count(), 25);
    assert_eq!(p.duration(), Duration::from_millis(500));
    assert_1k_tone(&p, 0.5);
}

#[test]
fn opposite_channels_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.wav");
    write_wav(&path, spec(8000, 2, 16, false), 160, |_, ch| {
        if ch == 0 {
            0.25
        } else {
            -0.25
        }
    });
    let p = Prompt::load("c", &path).unwrap();
    assert!(p.frames(Codec::Pcmu).iter().all(|&b| b == 0xFF));
}

#[test]
fn twenty_four_bit_48k() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p24.wav");
    write_wav(
        &path,
        spec(48_000, 1, 24, false),
        48_000,
        sine(1000.0, 48_000),
    );
    let p = Prompt::load("p24", &path).unwrap();
    assert_eq!(p.frame_count(), 50);
    assert_eq!(p.duration(), Duration::from_secs(1));
    assert_1k_tone(&p, 1.0);
}

#[test]
fn float_16k() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.wav");
    // 0.31 s: 4960 samples -> 2480 at 8 kHz -> 15.5 -> 16 frames (last one padded).
    write_wav(&path, spec(16_000, 1, 32, true), 4960, sine(1000.0, 16_000));
    let p = Prompt::load("f", &path).unwrap();
    assert_eq!(p.frame_count(), 16);
    assert_eq!(p.duration(), Duration::from_millis(320));
    assert_1k_tone(&p, 0.31);
    // The padded half of the last frame is codec silence.
    let last_u = p.frame(Codec::Pcmu, 15).unwrap();
    let last_a = p.frame(Codec::Pcma, 15).unwrap();
    assert!(last_u[80..].iter().all(|&b| b == 0xFF));
    assert!(last_a[80..].iter().all(|&b| b == 0xD5));
}

#[test]
fn float_overload_and_nan_are_clipped_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.wav");
    write_wav(&path, spec(8000, 1, 32, true), 3, |i, _| match i {
        0 => 4.0,
        1 => -4.0,
        _ => f64::NAN,
    });
    let p = Prompt::load("o", &path).unwrap();
    let f = p.frame(Codec::Pcmu, 0).unwrap();
    assert_eq!(
        &f[..3],
        &[linear_to_ulaw(i16::MAX), linear_to_ulaw(i16::MIN), 0xFF]
    );
}

#[test]
fn frames_are_slices_of_one_buffer() {
    let pcm: Vec<i16> = (0..400).map(|i| (i * 50) as i16).collect();
    let p = Prompt::from_pcm("r", &pcm);
    assert_eq!(p.frame_count(), 3);
    assert_eq!(p.frames(Codec::Pcmu).len(), 480);
    assert_eq!(p.frames(Codec::Pcma).len(), 480);
    let f1 = p.frame(Codec::Pcmu, 1).unwrap();
    assert_eq!(f1.len(), 160);
    assert_eq!(f1.as_ptr(), p.frames(Codec::Pcmu)[160..].as_ptr());
    assert_eq!(f1[0], linear_to_ulaw(160 * 50));
    assert_eq!(
        p.frame(Codec::Pcma, 2).unwrap()[0],
        linear_to_alaw(320 * 50)
    );
    assert!(p.frame(Codec::Pcmu, 3).is_none());
    assert!(p.frame(Codec::Pcma, usize::MAX).is_none());
    let empty = Prompt::from_pcm("e", &[]);
    assert_eq!(empty.frame_count(), 0);
    assert!(empty.frame(Codec::Pcmu, 0).is_none());
}

#[test]
fn ulaw_and_alaw_wav_fall_back_to_symphonia() {
    for file in ["tone_1k_ulaw.wav", "tone_1k_alaw.wav"] {
        let p = Prompt::load(file, &testdata(file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.frame_count(), 25, "{file}");
        assert_1k_tone(&p, 0.5);
    }
}

#[test]
fn mp3_ogg_flac_fixtures() {
    for file in ["tone_1k.mp3", "tone_1k.ogg", "tone_1k.flac"] {
        let p = Prompt::load(file, &testdata(file)).unwrap_or_else(|e| panic!("{e}"));
        // MP3 may carry encoder delay/padding (a few ms at each end).
        let ms = p.duration().as_millis();
        assert!((480..=600).contains(&ms), "{file}: {ms} ms");
        assert_1k_tone(&p, 0.45);
    }
}

#[test]
fn renamed_file_is_sniffed_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("actually_ogg.wav");
    std::fs::copy(testdata("tone_1k.ogg"), &path).unwrap();
    let p = Prompt::load("x", &path).unwrap();
    assert_eq!(p.frame_count(), 25);
}

fn load_err(name: &str, path: &Path) -> (PromptError, String) {
    let e = Prompt::load(name, path).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "no path in: {msg}"
    );
    assert!(msg.contains(name), "no name in: {msg}");
    (e, msg)
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let (e, msg) = load_err("welcome", &dir.path().join("nope.wav"));
    assert!(matches!(e, PromptError::Missing { .. }), "{e:?}");
    assert!(msg.contains("does not exist"));
}

#[test]
fn empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.wav");
    std::fs::write(&zero, b"").unwrap();
    let (e, _) = load_err("z", &zero);
    assert!(matches!(e, PromptError::Empty { .. }), "{e:?}");

    // A valid WAV header with no samples.
    let hdr = dir.path().join("hdr.wav");
    write_wav(&hdr, spec(8000, 1, 16, false), 0, |_, _| 0.0);
    let (e, msg) = load_err("h", &hdr);
    assert!(matches!(e, PromptError::Empty { .. }), "{e:?}");
    assert!(msg.contains("no audio samples"));
}

#[test]
fn garbage_and_truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wav");
    std::fs::write(&text, "this is not audio, just some text\n".repeat(20)).unwrap();
    let (e, msg) = load_err("g", &text);
    assert!(matches!(e, PromptError::Unsupported { .. }), "{e:?}");
    assert!(msg.contains("no RIFF/WAVE header"), "{msg}");

    let mp3 = dir.path().join("notes.mp3");
    std::fs::write(&mp3, "this is not audio, just some text\n".repeat(20)).unwrap();
    let (e, _) = load_err("m", &mp3);
    assert!(
        matches!(
            e,
            PromptError::Unsupported { .. } | PromptError::Corrupt { .. }
        ),
        "{e:?}"
    );

    // A RIFF/WAVE header whose format chunk is garbage.
    let bad_fmt = dir.path().join("bad_fmt.wav");
    let mut b = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00".to_vec();
    b.extend([0xEE; 16]);
    std::fs::write(&bad_fmt, b).unwrap();
    let (e, _) = load_err("b", &bad_fmt);
    assert!(
        matches!(
            e,
            PromptError::Unsupported { .. } | PromptError::Corrupt { .. }
        ),
        "{e:?}"
    );

    let unknown = dir.path().join("notes.txt");
    std::fs::write(&unknown, "hello").unwrap();
    let (e, msg) = load_err("u", &unknown);
    assert!(matches!(e, PromptError::Unsupported { .. }), "{e:?}");
    assert!(msg.contains("WAV, MP3, OGG/Vorbis or FLAC"));

    // A WAV whose data chunk is cut short.
    let good = dir.path().join("good.wav");
    write_wav(&good, spec(8000, 1, 16, false), 1000, |_, _| 0.1);
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..bytes.len() - 501]).unwrap();
    let (e, msg) = load_err("t", &cut);
    assert!(matches!(e, PromptError::Corrupt { .. }), "{e:?}");
    assert!(msg.contains("truncated"), "{msg}");

    // An OGG header followed by junk.
    let ogg = dir.path().join("bad.ogg");
    let mut junk = b"OggS".to_vec();
    junk.extend(std::iter::repeat_n(0x5Au8, 300));
    std::fs::write(&ogg, junk).unwrap();
    let (e, _) = load_err("o", &ogg);
    assert!(
        matches!(
            e,
            PromptError::Corrupt { .. } | PromptError::Unsupported { .. }
        ),
        "{e:?}"
    );
}

#[test]
fn directory_and_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = load_err("d", dir.path());
    assert!(matches!(e, PromptError::Unreadable { .. }), "{e:?}");

    use std::os::unix::fs::PermissionsExt;
    let locked = dir.path().join("locked.wav");
    write_wav(&locked, spec(8000, 1, 16, false), 160, |_, _| 0.0);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root ignores file permissions; only check where the OS enforces them.
    if std::fs::read(&locked).is_err() {
        let (e, msg) = load_err("l", &locked);
        assert!(matches!(e, PromptError::Unreadable { .. }), "{e:?}");
        assert!(msg.contains("chmod"), "{msg}");
    }
}

#[test]
fn library_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.wav");
    write_wav(&good, spec(8000, 1, 16, false), 320, |_, _| 0.1);
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let entries = vec![
        ("good".to_string(), good.clone()),
        ("missing".to_string(), dir.path().join("missing.wav")),
        ("empty".to_string(), empty.clone()),
        ("good".to_string(), empty.clone()),
    ];
    let err = PromptLibrary::load(entries).unwrap_err();
    let problems = err.problems();
    assert_eq!(problems.len(), 3, "{err}");
    let names: Vec<_> = problems.iter().filter_map(|p| p.prompt_name()).collect();
    assert_eq!(names, ["missing", "empty", "good"]);
    assert!(matches!(problems[2], PromptError::Duplicate { .. }));
    let msg = err.to_string();
    assert!(msg.starts_with("3 prompt problems found:"), "{msg}");
    assert!(
        msg.contains("missing.wav") && msg.contains("empty.wav"),
        "{msg}"
    );
}

#[test]
fn library_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.wav");
    write_wav(&a, spec(8000, 1, 16, false), 320, |_, _| 0.1);
    let mut lib = PromptLibrary::load([("a".to_string(), a)]).unwrap();
    assert_eq!(lib.len(), 1);
    assert!(lib.contains("a") && !lib.contains("b"));
    assert_eq!(lib.get("a").unwrap().frame_count(), 2);
    assert!(lib.insert(Prompt::from_pcm("b", &[0; 160])).is_none());
    let mut names: Vec<_> = lib.names().collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert!(PromptLibrary::load(Vec::new()).unwrap().is_empty());
}
