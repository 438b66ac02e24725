//! `GET /api/v1/events`: presence, call and attempt events as a
//! Server-Sent Events stream (WHATWG HTML §9.2), for the floor view and
//! integrations. Each event has an `id:` (see [`crate::events`] for how
//! ids are made), an `event:` with its kind and JSON `data:`; comments
//! keep idle connections open through proxies.
//!
//! Resume: a browser's `EventSource` sends the last id it saw as
//! `Last-Event-ID` when it reconnects; other clients may pass `?after=ID`.
//! The header wins (a page that first connected with `?after` reconnects
//! with the same URL but a newer header). When the events after that id
//! are no longer held, an `events.missed` event comes first: refetch the
//! snapshot (`/agents`, calls), then apply what follows.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::{ApiRole, Caller};
use crate::api::problem::{ApiQuery, FieldError, Problem};
use crate::api::ApiState;
use crate::events::{Body, Event, EventBus};

/// A comment this often on an idle stream: below the 30 to 60 s idle
/// timeouts of common proxies and load balancers.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new().routes(routes!(events))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this event id (a `Last-Event-ID` header wins over it).
    pub after: Option<String>,
}

/// The event stream.
///
/// `text/event-stream`, one event per change:
/// `id: <id>`, `event: <kind>` (`presence.online`, `presence.replaced`,
/// `presence.offline`, `presence.expired`, `presence.forced-offline`,
/// `presence.not-responding`, `presence.responding`,
/// `call.queued`, `call.bridged`, `call.ended`, `attempt.started`,
/// `attempt.accepted`, `attempt.missed`, and `events.missed` on a resume
/// the switch can no longer serve), `data: {"id", "type", "at", ...}`.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(
        EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (what EventSource sends when it reconnects)"),
    ),
    responses(
        (status = 200, description = "The stream; it stays open", content_type = "text/event-stream", body = String),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id to resume after is not a number", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn events(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Response {
    if let Err(p) = caller.require(ApiRole::Viewer) {
        return p.into_response();
    }
    let header = headers
        .get("last-event-id")
        .map(|v| (v.to_str().unwrap_or("\u{fffd}").to_owned(), "Last-Event-ID"));
    let after = match header.or(q.after.map(|a| (a, "after"))) {
        None => None,
        // An empty Last-Event-ID is what EventSource sends before it saw any id.
        Some((text, _)) if text.trim().is_empty() => None,
        Some((text, field)) => match text.trim().parse::<u64>() {
            Ok(id) => Some(id),
            Err(_) => {
                return Problem::invalid(vec![FieldError {
                    field: field.into(),
                    problem: format!("{text:?} is not an event id"),
                    fix:
                        "pass the id: of the last event received, or leave it out to start from now"
                            .into(),
                }])
                .into_response()
            }
        },
    };
    tracing::debug!(holder = %caller.name, after = after.unwrap_or(0), "event stream opened");
    Sse::new(stream(&s.events, after))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// The replay after `after`, then live events, without a gap or a repeat;
/// a reader that falls behind the live channel catches up from the bus's
/// ring (or is told it missed events).
fn stream(
    bus: &EventBus,
    after: Option<u64>,
) -> impl futures_util::Stream<Item = Result<sse::Event, Infallible>> {
    futures_util::stream::unfold(reader(bus, after), |mut r| async move {
        let item = match r.next().await? {
            // No id: the client's Last-Event-ID stays where it was.
            Item::Missed(body) => sse::Event::default().event(body.kind()).data(json(&body)),
            Item::Event(e) => sse::Event::default()
                .id(e.id.to_string())
                .event(e.kind())
                .data(json(&*e)),
        };
        Some((Ok(item), r))
    })
}

fn reader(bus: &EventBus, after: Option<u64>) -> Reader {
    let (replay, live) = bus.subscribe(after);
    // After a miss the whole ring goes out, whatever `after` said (it may
    // be an id from another run, above all of them).
    let last = match (&replay.missed, after) {
        (Some(_), _) => 0,
        (None, Some(after)) => after,
        (None, None) => replay.upto,
    };
    Reader {
        bus: bus.clone(),
        missed: replay.missed,
        pending: replay.events.into(),
        live,
        last,
    }
}

/// What the stream sends next.
#[derive(Debug, PartialEq)]
enum Item {
    Missed(Body),
    Event(Arc<Event>),
}

struct Reader {
    bus: EventBus,
    missed: Option<Body>,
    pending: VecDeque<Arc<Event>>,
    live: broadcast::Receiver<Arc<Event>>,
    /// The newest id sent (or known to the client).
    last: u64,
}

impl Reader {
    async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(body) = self.missed.take() {
                return Some(Item::Missed(body));
            }
            if let Some(e) = self.pending.pop_front() {
                // A replayed event can come again on the live channel
                // after a lag: each id once, in order.
                if e.id <= self.last {
                    continue;
                }
                self.last = e.id;
                return Some(Item::Event(e));
            }
            match self.live.recv().await {
                Ok(e) => self.pending.push_back(e),
                Err(RecvError::Lagged(_)) => {
                    let replay = self.bus.replay(Some(self.last));
                    self.missed = replay.missed;
                    self.pending = replay.events.into();
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body as HttpBody;
    use axum::http::{header, Method, Request, StatusCode};
    use futures_util::StreamExt as _;
    use tower::ServiceExt as _;

    use crate::api::testing::{self, call, ADMIN, SUPERVISOR, VIEWER};
    use crate::api::ApiState;
    use crate::events::Body;

    /// One SSE event as a client parses it.
    #[derive(Debug)]
    struct Frame {
        id: Option<u64>,
        event: String,
        data: serde_json::Value,
    }

    async fn open(
        s: &std::sync::Arc<ApiState>,
        uri: &str,
        last_event_id: Option<&str>,
    ) -> axum::response::Response {
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {VIEWER}"));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        crate::api::router(s.clone())
            .oneshot(req.body(HttpBody::empty()).unwrap())
            .await
            .unwrap()
    }

    /// The first `n` events of the stream (comments skipped).
    async fn frames(res: axum::response::Response, n: usize) -> Vec<Frame> {
        let mut body = res.into_body().into_data_stream();
        let mut text = String::new();
        let mut out = Vec::new();
        // A bound on a broken stream, not a timing assertion.
        tokio::time::timeout(Duration::from_secs(10), async {
            while out.len() < n {
                let chunk = body.next().await.expect("stream ended").unwrap();
                text.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = text.find("\n\n") {
                    let block: String = text.drain(..end + 2).collect();
                    let (mut id, mut event, mut data) = (None, String::new(), String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = v.parse().ok();
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            event = v.to_owned();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data.push_str(v);
                        }
                    }
                    if !event.is_empty() {
                        out.push(Frame {
                            id,
                            event,
                            data: serde_json::from_str(&data).unwrap(),
                        });
                    }
                }
            }
        })
        .await
        .expect("events within the bound");
        out
    }

    fn bridged(call: &str) -> Body {
        Body::CallBridged {
            call_id: call.into(),
            agent: "jsmith".into(),
        }
    }

    #[tokio::test]
    async fn every_role_may_read_and_no_token_may_not() {
        let s = testing::state().await;
        let a = call(&s, Method::GET, "/api/v1/events", None, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.content_type, "application/problem+json");
        let a = call(&s, Method::GET, "/api/v1/events", Some("wrong"), None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        for token in [VIEWER, SUPERVISOR, ADMIN] {
            let req = Request::builder()
                .uri("/api/v1/events")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(HttpBody::empty())
                .unwrap();
            let res = crate::api::router(s.clone()).oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{token}");
            let ct = res.headers()[header::CONTENT_TYPE].to_str().unwrap();
            assert_eq!(ct, "text/event-stream");
        }
    }

    #[tokio::test]
    async fn a_new_reader_gets_live_events_with_id_kind_and_json() {
        let s = testing::state().await;
        s.events.publish(bridged("before"), chrono::Utc::now());
        let res = open(&s, "/api/v1/events", None).await;
        let id = s.events.publish(bridged("after"), chrono::Utc::now()).id;
        let f = frames(res, 1).await;
        assert_eq!(f[0].id, Some(id));
        assert_eq!(f[0].event, "call.bridged");
        assert_eq!(f[0].data["call_id"], "after");
        assert_eq!(f[0].data["type"], "call.bridged");
    }

    #[tokio::test]
    async fn resume_after_an_id_by_header_or_query_then_live() {
        let s = testing::state().await;
        let ids: Vec<u64> = (0..3)
            .map(|i| {
                s.events
                    .publish(bridged(&format!("c{i}")), chrono::Utc::now())
                    .id
            })
            .collect();
        let res = open(&s, "/api/v1/events", Some(&ids[0].to_string())).await;
        let live = s.events.publish(bridged("live"), chrono::Utc::now()).id;
        let f = frames(res, 3).await;
        let got: Vec<Option<u64>> = f.iter().map(|f| f.id).collect();
        assert_eq!(got, [Some(ids[1]), Some(ids[2]), Some(live)]);
        // ?after, and the header winning over a stale ?after.
        let res = open(&s, &format!("/api/v1/events?after={}", ids[1]), None).await;
        assert_eq!(frames(res, 1).await[0].id, Some(ids[2]));
        let res = open(
            &s,
            &format!("/api/v1/events?after={}", ids[0]),
            Some(&ids[2].to_string()),
        )
        .await;
        assert_eq!(frames(res, 1).await[0].id, Some(live));
    }

    #[tokio::test]
    async fn an_id_no_longer_held_starts_with_events_missed() {
        let s = testing::state().await;
        let first = s.events.publish(bridged("c0"), chrono::Utc::now()).id;
        // An id from an earlier run: below this run's first.
        let res = open(&s, "/api/v1/events", Some("12345")).await;
        let f = frames(res, 2).await;
        assert_eq!(f[0].event, "events.missed");
        assert_eq!(f[0].id, None);
        assert_eq!(f[0].data["after"], 12345);
        assert_eq!(f[0].data["oldest"], first);
        assert_eq!(f[1].id, Some(first));
    }

    #[tokio::test]
    async fn a_bad_id_is_a_problem_naming_where_it_came_from() {
        let s = testing::state().await;
        let a = call(
            &s,
            Method::GET,
            "/api/v1/events?after=abc",
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(a.json["errors"][0]["field"], "after");
        let res = open(&s, "/api/v1/events", Some("x1")).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    /// A reader so far behind that the live channel dropped events for it
    /// is told it missed some, then gets what the ring holds, each once.
    #[tokio::test]
    async fn a_reader_that_falls_behind_is_told_and_catches_up() {
        use super::{reader, Item};
        let bus = crate::events::EventBus::new(2, chrono::Utc::now());
        let mut r = reader(&bus, None);
        let ids: Vec<u64> = (0..5)
            .map(|i| {
                bus.publish(bridged(&format!("c{i}")), chrono::Utc::now())
                    .id
            })
            .collect();
        let Some(Item::Missed(Body::Missed { oldest, .. })) = r.next().await else {
            panic!("a reader that lagged must first be told it missed events");
        };
        assert_eq!(oldest, Some(ids[3]));
        for want in &ids[3..] {
            match r.next().await {
                Some(Item::Event(e)) => assert_eq!(e.id, *want),
                other => panic!("{other:?}"),
            }
        }
        let live = bus.publish(bridged("live"), chrono::Utc::now()).id;
        match r.next().await {
            Some(Item::Event(e)) => assert_eq!(e.id, live),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_stream_is_in_the_openapi_document() {
        let s = testing::state().await;
        let a = call(&s, Method::GET, "/api/v1/openapi.json", None, None).await;
        let get = &a.json["paths"]["/api/v1/events"]["get"];
        assert!(
            get["responses"]["200"]["content"]["text/event-stream"].is_object(),
            "{get}"
        );
        let params = get["parameters"].as_array().unwrap();
        assert!(params
            .iter()
            .any(|p| p["name"] == "Last-Event-ID" && p["in"] == "header"));
        assert!(params
            .iter()
            .any(|p| p["name"] == "after" && p["in"] == "query"));
    }
}
