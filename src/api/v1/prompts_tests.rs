//! Route tests of prompt upload and playback.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;
use tower::ServiceExt as _;

use crate::api::testing::{self, call, ADMIN, SUPERVISOR, VIEWER};
use crate::api::ApiState;
use crate::config::Config;
use crate::presence::Store;

/// A state whose store folder is a temporary one (uploads go there).
async fn state(dir: &std::path::Path) -> Arc<ApiState> {
    let mut cfg = Config::embedded_default().unwrap_or_else(|e| panic!("{e}"));
    cfg.store.path = dir.join("tpswitch.db");
    let store = Store::open_in_memory()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ApiState::for_tests(cfg, store, testing::tokens())
}

fn welcome_wav() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/welcome.wav"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// PUT raw audio; returns (status, JSON or Null).
async fn upload(
    s: &Arc<ApiState>,
    name: &str,
    token: Option<&str>,
    content_type: &str,
    bytes: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/v1/prompts/{name}"))
        .header(header::CONTENT_TYPE, content_type);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = crate::api::router(s.clone())
        .oneshot(
            req.body(Body::from(bytes))
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .await
        .unwrap_or_else(|e| match e {});
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn uploads_are_for_admins_and_reads_for_viewers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = state(dir.path()).await;
    let (st, _) = upload(&s, "greeting2", None, "audio/wav", welcome_wav()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    for t in [VIEWER, SUPERVISOR] {
        let (st, _) = upload(&s, "greeting2", Some(t), "audio/wav", welcome_wav()).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        call(&s, Method::GET, "/api/v1/prompts", None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let a = call(
        &s,
        Method::GET,
        "/api/v1/prompts?limit=3",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(a.json["items"][0]["origin"], "file");
    assert!(a.json["next_cursor"].is_string());
}

/// An upload decodes, is stored under the store's folder, is listed as the
/// API's, plays back as 8 kHz WAV, and is removed with its file.
#[tokio::test]
async fn an_uploaded_prompt_plays_back_and_is_removed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = state(dir.path()).await;
    let (st, body) = upload(&s, "greeting2", Some(ADMIN), "audio/wav", welcome_wav()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["origin"], "api");
    let path = body["path"].as_str().unwrap_or_default().to_owned();
    assert!(
        path.starts_with(&dir.path().join("prompts").display().to_string()),
        "{path}"
    );
    assert!(std::path::Path::new(&path).exists());
    // Played back through the same decoder the switch uses, as WAV.
    let req = Request::builder()
        .uri("/api/v1/prompts/greeting2/audio")
        .header(header::AUTHORIZATION, format!("Bearer {VIEWER}"))
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("{e}"));
    let res = crate::api::router(s.clone())
        .oneshot(req)
        .await
        .unwrap_or_else(|e| match e {});
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "audio/wav");
    let wav = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let r =
        hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.spec().sample_rate, 8000);
    assert!(r.len() > 0);
    // A flow may now name it.
    let flow = call(&s, Method::GET, "/api/v1/flows/Billing", Some(VIEWER), None).await;
    let mut body = flow.json.clone();
    body["name"] = json!("Sales");
    body["prompts"]["greeting"] = json!("greeting2");
    let a = call(
        &s,
        Method::PUT,
        "/api/v1/flows/Sales",
        Some(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    // ...and then it cannot be removed.
    let a = call(
        &s,
        Method::DELETE,
        "/api/v1/prompts/greeting2",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.json);
    let a = call(&s, Method::DELETE, "/api/v1/flows/Sales", Some(ADMIN), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = call(
        &s,
        Method::DELETE,
        "/api/v1/prompts/greeting2",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.json);
    assert!(!std::path::Path::new(&path).exists());
}

/// Any rate, stereo: 44.1 kHz two-channel WAV is converted on upload.
#[tokio::test]
async fn a_44k_stereo_upload_is_converted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = state(dir.path()).await;
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..44100u32 {
            let v =
                ((f64::from(i) * 440.0 * std::f64::consts::TAU / 44100.0).sin() * 8000.0) as i16;
            w.write_sample(v).unwrap_or_else(|e| panic!("{e}"));
            w.write_sample(v).unwrap_or_else(|e| panic!("{e}"));
        }
        w.finalize().unwrap_or_else(|e| panic!("{e}"));
    }
    let (st, body) = upload(&s, "tone", Some(ADMIN), "audio/x-wav", out.into_inner()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
}

/// Audio that does not decode is refused with the start-up's message and
/// leaves nothing behind; a file prompt is the file's; an unknown type 415.
#[tokio::test]
async fn bad_uploads_change_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = state(dir.path()).await;
    let (st, body) = upload(
        &s,
        "noise",
        Some(ADMIN),
        "audio/wav",
        b"not audio at all".to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "audio");
    assert!(
        body["errors"][0]["problem"]
            .as_str()
            .unwrap_or_default()
            .contains("noise"),
        "{body}"
    );
    let left = std::fs::read_dir(dir.path().join("prompts"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "a refused upload left its file");
    assert!(s
        .store
        .directory_objects()
        .await
        .unwrap_or_default()
        .is_empty());
    let (st, body) = upload(&s, "welcome", Some(ADMIN), "audio/wav", welcome_wav()).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("tpswitch.toml"));
    let (st, _) = upload(&s, "x", Some(ADMIN), "text/plain", welcome_wav()).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (st, body) = upload(&s, "a%20b", Some(ADMIN), "audio/wav", welcome_wav()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "name");
}
