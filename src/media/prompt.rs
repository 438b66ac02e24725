//! Prompts: audio files decoded, resampled and G.711-encoded once at start-up.
//!
//! A playing call only slices pre-encoded 20 ms frames out of shared [`Bytes`] (a
//! reference-count bump, no copy, no decoding), which is what lets thousands of calls play
//! prompts at once. Loading reports every broken file in one go, so an operator fixes the
//! whole configuration in one pass instead of one restart per file.

mod decode;
mod resample;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::media::codec::Codec;
use crate::media::g711::{linear_to_alaw, linear_to_ulaw};

use decode::DecodeFailure;

/// Samples (= bytes in G.711) per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = Codec::SAMPLES_PER_FRAME;
/// Play-out time of one frame.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// Why a prompt could not be loaded. Each variant names the prompt and the file and says
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(
        "prompt \"{name}\": file {} does not exist; create it or correct the path given for \"{name}\" in the [prompts] section of the configuration",
        path.display()
    )]
    Missing { name: String, path: PathBuf },

    #[error(
        "prompt \"{name}\": cannot read {}: {source}; make sure it is a regular file the tpswitch user may read (e.g. chmod a+r)",
        path.display()
    )]
    Unreadable {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "prompt \"{name}\": {} contains no audio samples; re-record or re-export it",
        path.display()
    )]
    Empty { name: String, path: PathBuf },

    #[error(
        "prompt \"{name}\": {} is not in a supported audio format ({detail}); convert it to WAV, MP3, OGG/Vorbis or FLAC, e.g. `sox in.xxx -r 8000 -c 1 -b 16 out.wav`",
        path.display()
    )]
    Unsupported {
        name: String,
        path: PathBuf,
        detail: String,
    },

    #[error(
        "prompt \"{name}\": {} could not be decoded ({detail}); the file is damaged or truncated, re-export it",
        path.display()
    )]
    Corrupt {
        name: String,
        path: PathBuf,
        detail: String,
    },

    #[error(
        "prompt \"{name}\": {} could not be converted to 8 kHz ({detail}); convert it to 8 kHz mono WAV, e.g. `sox in.wav -r 8000 -c 1 -b 16 out.wav`",
        path.display()
    )]
    Resample {
        name: String,
        path: PathBuf,
        detail: String,
    },

    #[error(
        "prompt \"{name}\" is defined twice ({} and {}); give each prompt a unique name",
        first.display(),
        second.display()
    )]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },

    /// Every problem found by [`PromptLibrary::load`], one per line in the message.
    #[error("{}", list_problems(.0))]
    Several(Vec<PromptError>),
}

fn list_problems(errors: &[PromptError]) -> String {
    let mut s = format!(
        "{} prompt problem{} found:",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        let _ = write!(s, "\n  - {e}");
    }
    s
}

impl PromptError {
    /// The individual problems: the list for [`PromptError::Several`], else just `self`.
    pub fn problems(&self) -> &[PromptError] {
        match self {
            PromptError::Several(all) => all,
            one => std::slice::from_ref(one),
        }
    }

    /// The prompt name this problem is about (`None` for [`PromptError::Several`]).
    pub fn prompt_name(&self) -> Option<&str> {
        match self {
            PromptError::Missing { name, .. }
            | PromptError::Unreadable { name, .. }
            | PromptError::Empty { name, .. }
            | PromptError::Unsupported { name, .. }
            | PromptError::Corrupt { name, .. }
            | PromptError::Resample { name, .. }
            | PromptError::Duplicate { name, .. } => Some(name),
            PromptError::Several(_) => None,
        }
    }
}

/// One prompt, pre-encoded as 20 ms G.711 frames for both codecs.
///
/// Frames live in one contiguous buffer per codec; [`Prompt::frame`] hands out cheap
/// slices of it. The last frame is padded with the codec's silence byte.
#[derive(Debug, Clone)]
pub struct Prompt {
    name: String,
    frames_pcmu: Bytes,
    frames_pcma: Bytes,
    frame_count: usize,
    duration: Duration,
}

impl Prompt {
    /// Decode, downmix, resample to 8 kHz and encode one audio file.
    pub fn load(name: &str, path: &Path) -> Result<Prompt, PromptError> {
        let owned = || (name.to_string(), path.to_path_buf());
        let bytes = std::fs::read(path).map_err(|source| {
            let (name, path) = owned();
            if source.kind() == io::ErrorKind::NotFound {
                PromptError::Missing { name, path }
            } else {
                PromptError::Unreadable { name, path, source }
            }
        })?;
        if bytes.is_empty() {
            let (name, path) = owned();
            return Err(PromptError::Empty { name, path });
        }
        let decoded = decode::decode(bytes, path).map_err(|f| {
            let (name, path) = owned();
            match f {
                DecodeFailure::Unsupported(detail) => {
                    PromptError::Unsupported { name, path, detail }
                }
                DecodeFailure::Corrupt(detail) => PromptError::Corrupt { name, path, detail },
            }
        })?;
        if decoded.samples.is_empty() {
            let (name, path) = owned();
            return Err(PromptError::Empty { name, path });
        }
        let at_8k = resample::to_8k(&decoded.samples, decoded.rate).map_err(|detail| {
            let (name, path) = owned();
            PromptError::Resample { name, path, detail }
        })?;
        let (pcm, clipped) = to_i16(&at_8k);
        if clipped > 0 {
            tracing::warn!(prompt = name, path = %path.display(), clipped,
                "prompt clips after resampling; consider lowering its level");
        }
        let prompt = Prompt::from_pcm(name, &pcm);
        tracing::debug!(prompt = name, path = %path.display(), source_rate = decoded.rate,
            frames = prompt.frame_count, "prompt loaded");
        Ok(prompt)
    }

    /// Build a prompt from 8 kHz mono linear PCM (e.g. a generated tone).
    pub fn from_pcm(name: impl Into<String>, pcm: &[i16]) -> Prompt {
        let frame_count = pcm.len().div_ceil(FRAME_SAMPLES);
        let encode = |codec: Codec, f: fn(i16) -> u8| {
            let mut buf = vec![codec.silence_byte(); frame_count * FRAME_SAMPLES];
            for (dst, &s) in buf.iter_mut().zip(pcm) {
                *dst = f(s);
            }
            Bytes::from(buf)
        };
        Prompt {
            name: name.into(),
            frames_pcmu: encode(Codec::Pcmu, linear_to_ulaw),
            frames_pcma: encode(Codec::Pcma, linear_to_alaw),
            frame_count,
            duration: FRAME_DURATION * u32::try_from(frame_count).unwrap_or(u32::MAX),
        }
    }

    /// The library name (e.g. "welcome", "num_8").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of 20 ms frames.
    pub fn frame_count(&self) -> usize {
        self.frame_count
    }

    /// Play-out time: `frame_count` × 20 ms (the padded last frame counts whole).
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Frame `i` (160 bytes) in `codec`, or `None` past the end.
    pub fn frame(&self, codec: Codec, i: usize) -> Option<Bytes> {
        let start = i.checked_mul(FRAME_SAMPLES)?;
        let end = start.checked_add(FRAME_SAMPLES)?;
        let all = self.frames(codec);
        (end <= all.len()).then(|| all.slice(start..end))
    }

    /// All frames of `codec` back to back (`frame_count * 160` bytes).
    pub fn frames(&self, codec: Codec) -> &Bytes {
        match codec {
            Codec::Pcmu => &self.frames_pcmu,
            Codec::Pcma => &self.frames_pcma,
        }
    }
}

/// Float [-1, 1] to i16 with saturation; returns the samples and how many clipped.
fn to_i16(samples: &[f32]) -> (Vec<i16>, usize) {
    let mut clipped = 0;
    let pcm = samples
        .iter()
        .map(|&x| {
            let v = (f64::from(x) * 32768.0).round();
            if !(-32768.0..=32767.0).contains(&v) {
                clipped += 1;
            }
            // `as` saturates and maps NaN to 0.
            v as i16
        })
        .collect();
    (pcm, clipped)
}

/// All prompts by name, shared read-only between calls.
#[derive(Debug, Clone, Default)]
pub struct PromptLibrary {
    prompts: HashMap<String, Arc<Prompt>>,
}

impl PromptLibrary {
    /// Load every `(name, path)` entry. Returns all problems at once as
    /// [`PromptError::Several`] (even when there is only one), or the full library.
    pub fn load(entries: impl IntoIterator<Item = (String, PathBuf)>) -> Result<Self, PromptError> {
        let mut prompts: HashMap<String, Arc<Prompt>> = HashMap::new();
        let mut seen: HashMap<String, PathBuf> = HashMap::new();
        let mut errors = Vec::new();
        for (name, path) in entries {
            if let Some(first) = seen.get(&name) {
                errors.push(PromptError::Duplicate {
                    name,
                    first: first.clone(),
                    second: path,
                });
                continue;
            }
            match Prompt::load(&name, &path) {
                Ok(p) => {
                    prompts.insert(name.clone(), Arc::new(p));
                }
                Err(e) => errors.push(e),
            }
            seen.insert(name, path);
        }
        if errors.is_empty() {
            Ok(PromptLibrary { prompts })
        } else {
            Err(PromptError::Several(errors))
        }
    }

    /// Add or replace a prompt (e.g. one built with [`Prompt::from_pcm`]).
    pub fn insert(&mut self, prompt: Prompt) -> Option<Arc<Prompt>> {
        self.prompts.insert(prompt.name.clone(), Arc::new(prompt))
    }

    /// The prompt called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Prompt>> {
        self.prompts.get(name)
    }

    /// The prompts for a playlist, in order. A name the library lacks is skipped with a
    /// warning: the caller still hears the rest rather than nothing.
    pub fn clips<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<Arc<Prompt>> {
        names
            .into_iter()
            .filter_map(|name| {
                let p = self.get(name).cloned();
                if p.is_none() {
                    tracing::warn!(prompt = %name, "prompt missing from the library; skipped");
                }
                p
            })
            .collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.prompts.contains_key(name)
    }

    /// Prompt names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.prompts.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}
