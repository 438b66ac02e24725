//! The live directory: the file's users, flows and dispatch mappings plus
//! those made through the API (the store), changed while the switch runs.
//!
//! One owner holds it (the composition root's main loop, which also runs
//! reloads, so the two never interleave). A change is checked by building
//! the whole candidate configuration with `config::directory::build` —
//! the same validation and messages as the TOML — then written to the
//! store, and only then installed for the next call: durable before
//! acknowledged. The rules joining file and store are in
//! `config::directory` and docs/decisions.md.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::directory::{self, Declared, Kind, Origin};
use crate::config::{Config, ConfigError, Problem};
use crate::media::prompt::Prompt;
use crate::presence::sqlite_directory::DirectoryWrite;
use crate::presence::Store;

/// What the API asks the owner to do.
#[derive(Debug, Clone)]
pub enum Change {
    /// Create or replace the API object `Declared.kind`/`Declared.key`.
    Put(Declared),
    Delete {
        kind: Kind,
        key: String,
    },
}

/// Why a change was refused; nothing was written or installed.
#[derive(Debug, Clone)]
pub enum Refusal {
    NotFound(String),
    /// The object is the file's, or removing it breaks what depends on it.
    Conflict(String),
    /// The candidate configuration fails validation: its problems, and the
    /// index the changed object has in its TOML array (to tell the
    /// object's own members from problems elsewhere).
    Invalid {
        kind: Kind,
        index: Option<usize>,
        problems: Vec<Problem>,
    },
    /// The store could not write it.
    Store(String),
    /// `If-Match` named a version the object no longer has (or it is gone).
    Precondition(String),
}

/// What an accepted change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Replaced,
    Deleted,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Replaced => "replaced",
            Applied::Deleted => "deleted",
        }
    }
}

/// One request to the owner, answered on `reply`.
pub struct Request {
    pub change: Change,
    /// The `If-Match` entity tag the client sent (`*`: the object must
    /// exist); `None`: change it whatever its version.
    pub if_match: Option<String>,
    /// The token holder, for the log.
    pub actor: String,
    pub reply: oneshot::Sender<Result<Applied, Refusal>>,
}

/// Every object of the running directory with its origin, as the API
/// lists them; published by the owner after each change or reload.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub objects: Vec<(Origin, Declared)>,
    /// The configuration file's path, for "declared in FILE" messages.
    pub file: String,
}

impl View {
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &(Origin, Declared)> {
        self.objects.iter().filter(move |(_, d)| d.kind == kind)
    }

    pub fn get(&self, kind: Kind, key: &str) -> Option<&(Origin, Declared)> {
        self.of(kind).find(|(_, d)| d.key == key)
    }
}

/// The API's side: where to ask, and what is in force.
#[derive(Clone)]
pub struct Handle {
    pub requests: mpsc::Sender<Request>,
    pub view: watch::Receiver<Arc<View>>,
}

/// The owner's state.
#[derive(Debug, Clone)]
pub struct LiveDirectory {
    /// The configuration file's text as last loaded (start or reload):
    /// an API change is joined with this, never with an edit of the file
    /// that has not been reloaded.
    pub file_text: String,
    /// The file's path (messages, relative paths).
    pub path: PathBuf,
    pub file: Vec<Declared>,
    pub api: Vec<Declared>,
    /// The store's path, for messages.
    pub store_name: String,
}

impl LiveDirectory {
    /// The directory from `file_text` and what `store` holds; a key both
    /// declare is an error naming both (start-up stops on it).
    pub async fn load(
        path: PathBuf,
        file_text: String,
        store: &Store,
    ) -> Result<LiveDirectory, Vec<String>> {
        let api = store
            .directory_objects()
            .await
            .map_err(|e| vec![e.to_string()])?;
        let dir = LiveDirectory {
            file: directory::declared_in(&file_text),
            file_text,
            path,
            api,
            store_name: store.db().display().to_string(),
        };
        let c = dir.conflicts_with(&dir.file);
        if c.is_empty() {
            Ok(dir)
        } else {
            Err(c)
        }
    }

    /// The store's objects that `file` also declares, as error lines.
    pub fn conflicts_with(&self, file: &[Declared]) -> Vec<String> {
        directory::conflicts(
            file,
            &self.api,
            &self.path.display().to_string(),
            &self.store_name,
        )
    }

    /// The running configuration: file and store, validated whole.
    pub fn build(&self) -> Result<Config, ConfigError> {
        directory::build(&self.file_text, &self.path, &self.api)
    }

    /// Every object with its origin, the file's first.
    pub fn view(&self) -> View {
        View {
            objects: self
                .file
                .iter()
                .map(|d| (Origin::File, d.clone()))
                .chain(self.api.iter().map(|d| (Origin::Api, d.clone())))
                .collect(),
            file: self.path.display().to_string(),
        }
    }

    /// A problem of the object at `index` that says a value is already
    /// another object's (`... is already the number of
    /// dispatch_mappings[0]`) where that object is the file's: a conflict
    /// with the file, named, rather than a plain validation problem.
    fn taken_by_file(&self, kind: Kind, index: usize, problems: &[Problem]) -> Option<String> {
        let in_file = self.file.iter().filter(|d| d.kind == kind).count();
        problems
            .iter()
            .filter(|p| directory::member_of(p, kind, index).is_some())
            .find_map(|p| {
                (0..in_file)
                    .find(|j| p.problem.ends_with(&format!("{}[{j}]", kind.table())))
                    .map(|j| {
                        format!(
                            "{}: {}; {}[{j}] is declared in {}",
                            directory::member_of(p, kind, index).unwrap_or_default(),
                            p.problem,
                            kind.table(),
                            self.path.display()
                        )
                    })
            })
    }

    /// Check `change` against the whole configuration, write it to the
    /// store, and return the configuration to install. On any refusal
    /// nothing is written and `self` is unchanged.
    pub async fn apply(
        &mut self,
        store: &Store,
        change: &Change,
        if_match: Option<&str>,
    ) -> Result<(Applied, Config, Option<Prompt>), Refusal> {
        let file_name = self.path.display().to_string();
        let (kind, key) = match change {
            Change::Put(d) => (d.kind, d.key.clone()),
            Change::Delete { kind, key } => (*kind, key.clone()),
        };
        if let Some(tag) = if_match {
            let now = self
                .file
                .iter()
                .chain(&self.api)
                .find(|d| d.kind == kind && d.key == key)
                .map(Declared::etag);
            let matches = match now.as_deref() {
                None => false,
                Some(_) if tag.trim() == "*" => true,
                Some(t) => tag.split(',').any(|c| c.trim() == t),
            };
            if !matches {
                return Err(Refusal::Precondition(format!(
                    "the {} {key:?} {} since the version in If-Match; read it again and redo the change",
                    kind.noun(),
                    if now.is_some() { "has changed" } else { "is gone" }
                )));
            }
        }
        if self.file.iter().any(|d| d.kind == kind && d.key == key) {
            return Err(Refusal::Conflict(format!(
                "the {} {key:?} is declared in {file_name}: change it there and reload",
                kind.noun()
            )));
        }
        let mut candidate = self.api.clone();
        let at = candidate
            .iter()
            .position(|d| d.kind == kind && d.key == key);
        let (applied, index) = match (change, at) {
            (Change::Put(d), Some(i)) => {
                candidate[i] = d.clone();
                (Applied::Replaced, Some(i))
            }
            (Change::Put(d), None) => {
                candidate.push(d.clone());
                (Applied::Created, Some(candidate.len() - 1))
            }
            (Change::Delete { .. }, Some(i)) => {
                candidate.remove(i);
                (Applied::Deleted, None)
            }
            (Change::Delete { .. }, None) => {
                return Err(Refusal::NotFound(format!("no {} {key:?}", kind.noun())));
            }
        };
        // Its index in the TOML array: the file's of that kind come first.
        let index = index.map(|i| {
            self.file.iter().filter(|d| d.kind == kind).count()
                + candidate[..i].iter().filter(|d| d.kind == kind).count()
        });
        let cfg = match directory::build(&self.file_text, &self.path, &candidate) {
            Ok(cfg) => cfg,
            Err(e) => {
                let problems = e.problems().to_vec();
                if applied == Applied::Deleted {
                    // Only what depends on the removed object can break.
                    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    return Err(Refusal::Conflict(format!(
                        "the {} {key:?} is still needed: {}",
                        kind.noun(),
                        lines.join("; ")
                    )));
                }
                if let Some(c) = index.and_then(|i| self.taken_by_file(kind, i, &problems)) {
                    return Err(Refusal::Conflict(c));
                }
                return Err(Refusal::Invalid {
                    kind,
                    index,
                    problems,
                });
            }
        };
        // An uploaded prompt is decoded and pre-encoded now, with the
        // start-up's errors: never stored unless it plays.
        let prompt = match change {
            Change::Put(d) if kind == Kind::Prompts => {
                let path = PathBuf::from(
                    d.table
                        .get("path")
                        .and_then(toml::Value::as_str)
                        .unwrap_or_default(),
                );
                let name = key.clone();
                let loaded = tokio::task::spawn_blocking(move || Prompt::load(&name, &path)).await;
                match loaded {
                    Ok(Ok(p)) => Some(p),
                    Ok(Err(e)) => {
                        return Err(Refusal::Invalid {
                            kind,
                            index: None,
                            problems: vec![Problem::new(
                            "audio",
                            e.to_string(),
                            "upload WAV, MP3, OGG (Vorbis) or FLAC audio, any rate, mono or stereo",
                        )],
                        })
                    }
                    Err(e) => return Err(Refusal::Store(format!("decoding failed: {e}"))),
                }
            }
            _ => None,
        };
        let write = match change {
            Change::Put(d) => DirectoryWrite::Put(d.clone()),
            Change::Delete { kind, key } => DirectoryWrite::Delete {
                kind: *kind,
                key: key.clone(),
            },
        };
        store
            .write_directory(&write)
            .await
            .map_err(|e| Refusal::Store(e.to_string()))?;
        self.api = candidate;
        Ok((applied, cfg, prompt))
    }
}
