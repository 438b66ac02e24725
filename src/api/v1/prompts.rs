//! `/api/v1/prompts`: the media prompts, uploaded while the switch runs.
//!
//! `PUT /api/v1/prompts/{name}` takes the audio itself (WAV, MP3, OGG
//! Vorbis or FLAC, any rate, by its Content-Type), writes it under the
//! store's folder (`prompts/`), and asks the directory's owner to add it:
//! the owner decodes and pre-encodes it with the start-up's errors and only
//! then stores and installs it, so a prompt that does not play is never
//! kept. `GET .../audio` plays it back as 8 kHz WAV — what callers hear.
//! The file's `[prompts]` are read-only here (409 naming the file), as the
//! other directory objects are (docs/decisions.md).

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::warn;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::{ApiRole, Caller};
use crate::api::page::PageQuery;
use crate::api::problem::{ApiQuery, FieldError, Problem};
use crate::api::ApiState;
use crate::config::directory::{self, Kind, Origin};
use crate::directory::{Applied, Change};
use crate::media::codec::Codec;
use crate::media::prompt::Prompt;

/// The largest upload: a few minutes of hold music as WAV.
const MAX_UPLOAD: usize = 32 << 20;

/// A prompt of the library.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptView {
    pub name: String,
    /// The audio file (as the configuration writes it, or where an upload
    /// was stored).
    pub path: String,
    /// `file` (read-only here) or `api`.
    pub origin: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromptPage {
    pub items: Vec<PromptView>,
    pub next_cursor: Option<String>,
}

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list_prompts))
        .routes(routes!(get_prompt, put_prompt, delete_prompt))
        .routes(routes!(prompt_audio))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
}

fn view(origin: Origin, d: &directory::Declared) -> PromptView {
    PromptView {
        name: d.key.clone(),
        path: d
            .table
            .get("path")
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        origin: origin.as_str().to_owned(),
    }
}

/// The prompts, by name.
#[utoipa::path(get, path = "/api/v1/prompts", tag = "directory", params(PageQuery),
    responses(
        (status = 200, description = "One page of prompts", body = PromptPage),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_prompts(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Response {
    super::directory::list_of(&s, &caller, Kind::Prompts, &q, view)
}

/// One prompt.
#[utoipa::path(get, path = "/api/v1/prompts/{name}", tag = "directory",
    params(("name" = String, Path, description = "The prompt's name")),
    responses(
        (status = 200, description = "The prompt", body = PromptView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such prompt", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_prompt(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    if let Err(p) = caller.require(ApiRole::Viewer) {
        return p.into_response();
    }
    let current = s.directory.view.borrow().clone();
    match current.get(Kind::Prompts, &name) {
        Some((o, d)) => axum::Json(view(*o, d)).into_response(),
        None => Problem::not_found(format!("no prompt {name:?}")).into_response(),
    }
}

/// The file extension the decoder is told, from the upload's Content-Type.
fn extension(headers: &HeaderMap) -> Option<&'static str> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let ct = ct.split(';').next()?.trim().to_ascii_lowercase();
    Some(match ct.as_str() {
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "wav",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/ogg" | "audio/vorbis" => "ogg",
        "audio/flac" | "audio/x-flac" => "flac",
        _ => return None,
    })
}

/// Letters, digits, '.', '_' and '-', as `[prompts]` names in the file.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Upload (create or replace) a prompt; callers hear it from the next call.
#[utoipa::path(put, path = "/api/v1/prompts/{name}", tag = "directory",
    params(("name" = String, Path, description = "The prompt's name, as flows name it")),
    request_body(content = Vec<u8>, description = "The audio: WAV, MP3, OGG Vorbis or FLAC, any rate",
        content_type = "audio/wav"),
    responses(
        (status = 200, description = "Replaced", body = PromptView),
        (status = 201, description = "Created", body = PromptView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The prompt is declared in the configuration file", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 32 MiB"),
        (status = 415, description = "Not an audio type tpswitch reads", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The audio does not decode, or a bad name", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored: nothing changed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_prompt(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(p) = caller.require(ApiRole::Admin) {
        return p.into_response();
    }
    if !valid_name(&name) {
        return Problem::invalid(vec![FieldError {
            field: "name".into(),
            problem: format!("{name:?} is not a valid prompt name"),
            fix: "use letters, digits, '.', '_' and '-'".into(),
        }])
        .into_response();
    }
    let Some(ext) = extension(&headers) else {
        return Problem {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE.as_u16(),
            ..Problem::bad_request(
                "send the audio with Content-Type audio/wav, audio/mpeg, audio/ogg or audio/flac",
            )
        }
        .into_response();
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return (
                e.status(),
                Problem {
                    status: e.status().as_u16(),
                    ..Problem::bad_request(format!("the audio was not received: {}", e.body_text()))
                },
            )
                .into_response()
        }
    };
    let folder = s
        .cfg
        .store
        .path
        .parent()
        .map(FsPath::to_path_buf)
        .unwrap_or_default()
        .join("prompts");
    // A new file per upload: the prompt in force keeps its file until the
    // new one is accepted.
    let file = folder.join(format!(
        "{name}-{}.{ext}",
        chrono::Utc::now().timestamp_millis()
    ));
    let written = async {
        tokio::fs::create_dir_all(&folder).await?;
        tokio::fs::write(&file, &body).await
    }
    .await;
    if let Err(e) = written {
        return Problem::unavailable(format!(
            "cannot write {}: {e}; nothing was changed",
            file.display()
        ))
        .into_response();
    }
    let before = s
        .directory
        .view
        .borrow()
        .get(Kind::Prompts, &name)
        .filter(|(o, _)| *o == Origin::Api)
        .map(|(_, d)| view(Origin::Api, d).path);
    let declared = directory::prompt(&name, toml::Value::String(file.display().to_string()));
    match ask(&s, &caller, Change::Put(declared)).await {
        Ok(applied) => {
            if let Some(old) = before {
                remove(PathBuf::from(old)).await;
            }
            let status = if applied == Applied::Created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let body = s
                .directory
                .view
                .borrow()
                .get(Kind::Prompts, &name)
                .map(|(o, d)| view(*o, d));
            (status, axum::Json(body)).into_response()
        }
        Err(p) => {
            remove(file).await;
            p.into_response()
        }
    }
}

/// Best effort: a file left behind is only disk space.
async fn remove(file: PathBuf) {
    if let Err(e) = tokio::fs::remove_file(&file).await {
        warn!(file = %file.display(), error = %e, "cannot remove a prompt file no longer used");
    }
}

async fn ask(s: &ApiState, caller: &Caller, change: Change) -> Result<Applied, Problem> {
    super::directory::ask(s, caller, change, None).await
}

/// Remove an uploaded prompt; refused while a flow plays it.
#[utoipa::path(delete, path = "/api/v1/prompts/{name}", tag = "directory",
    params(("name" = String, Path, description = "The prompt's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such prompt", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Declared in the file, or a flow plays it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored: nothing changed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_prompt(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    if let Err(p) = caller.require(ApiRole::Admin) {
        return p.into_response();
    }
    let before = s
        .directory
        .view
        .borrow()
        .get(Kind::Prompts, &name)
        .filter(|(o, _)| *o == Origin::Api)
        .map(|(_, d)| view(Origin::Api, d).path);
    match ask(
        &s,
        &caller,
        Change::Delete {
            kind: Kind::Prompts,
            key: name,
        },
    )
    .await
    {
        Ok(_) => {
            if let Some(old) = before {
                remove(PathBuf::from(old)).await;
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(p) => p.into_response(),
    }
}

/// The prompt as callers hear it: 8 kHz mono 16-bit WAV, decoded from its
/// pre-encoded G.711 μ-law frames.
#[utoipa::path(get, path = "/api/v1/prompts/{name}/audio", tag = "directory",
    params(("name" = String, Path, description = "The prompt's name")),
    responses(
        (status = 200, description = "The audio", content_type = "audio/wav", body = Vec<u8>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such prompt", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The prompt's file no longer decodes", body = Problem, content_type = "application/problem+json"),
    ))]
async fn prompt_audio(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    if let Err(p) = caller.require(ApiRole::Viewer) {
        return p.into_response();
    }
    // The file the directory names (relative paths are the config file's),
    // else a default the configuration resolved (`prompts/NAME.wav`).
    let named = {
        let current = s.directory.view.borrow().clone();
        current.get(Kind::Prompts, &name).map(|(_, d)| {
            let p = PathBuf::from(view(Origin::File, d).path);
            match FsPath::new(&current.file).parent() {
                Some(dir) if p.is_relative() => dir.join(p),
                _ => p,
            }
        })
    };
    let path = named.or_else(|| {
        s.current
            .borrow()
            .prompt_path(&name)
            .map(FsPath::to_path_buf)
    });
    let Some(path) = path else {
        return Problem::not_found(format!("no prompt {name:?}")).into_response();
    };
    let loaded = tokio::task::spawn_blocking(move || {
        Prompt::load(&name, &path)
            .map(|p| wav(&p))
            .map_err(|e| e.to_string())
    })
    .await;
    match loaded {
        Ok(Ok(Ok(bytes))) => ([(header::CONTENT_TYPE, "audio/wav")], bytes).into_response(),
        Ok(Ok(Err(e))) => Problem::internal(format!("cannot write the WAV: {e}")).into_response(),
        Ok(Err(e)) => Problem::invalid(vec![FieldError {
            field: "audio".into(),
            problem: e,
            fix: "upload the prompt again".into(),
        }])
        .into_response(),
        Err(e) => Problem::internal(format!("decoding failed: {e}")).into_response(),
    }
}

fn wav(p: &Prompt) -> Result<Vec<u8>, hound::Error> {
    let mut pcm = Vec::new();
    crate::media::g711::decode_ulaw(p.frames(Codec::Pcmu), &mut pcm);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut out, spec)?;
        for s in pcm {
            w.write_sample(s)?;
        }
        w.finalize()?;
    }
    Ok(out.into_inner())
}

#[cfg(test)]
#[path = "prompts_tests.rs"]
mod tests;
