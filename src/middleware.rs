//! actix-web integration (feature `actix-web`): a middleware that gives each request a
//! [`RequestTelemetry`] context, and the extractor that hands it to a handler.
//!
//! The context knows who the request is for: a distinct id and a session id, taken from the
//! application's own source ([`TelemetryMiddleware::identify`], or an extractor with
//! [`TelemetryMiddleware::identify_with`]), else from two headers (by default
//! `X-PostHog-Distinct-Id` and `X-PostHog-Session-Id`, as PostHog's browser SDK sends them), and
//! settable by the handler once it knows better ([`RequestTelemetry::identify`]). Events
//! recorded through the context carry them (the distinct id as the event's own identity, see
//! [`Record::distinct_id`], the session as its own `$session_id`) without touching the
//! process's identity; without ids the process's identity applies.
//!
//! Optionally the middleware records one event per request ([`REQUEST_EVENT`]): the method,
//! the route pattern (`/users/{id}`, never the path with its values or the query string), the
//! status and the duration. No client address is recorded.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::HeaderName;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, ResponseError};

use crate::admission::EventSender;
use crate::event_identity::MAX_DISTINCT_ID_BYTES;
use crate::messages::Record;

/// The header a distinct id is read from by default.
pub const DISTINCT_ID_HEADER: &str = "x-posthog-distinct-id";

/// The header a session id is read from by default.
pub const SESSION_ID_HEADER: &str = "x-posthog-session-id";

/// The name of the per-request event ([`TelemetryMiddleware::request_events`]).
pub const REQUEST_EVENT: &str = "http_request";

/// The longest session id taken from a request (a longer one is ignored).
pub const MAX_SESSION_ID_BYTES: usize = 200;

/// The `route` of a request event when no route matched (a 404 of the router).
const UNMATCHED_ROUTE: &str = "(unmatched)";

/// Who a request is for.
///
/// ```
/// use actix_telemetry::{RequestIds, TelemetryMiddleware};
/// # fn middleware(events: actix_telemetry::EventSender) -> TelemetryMiddleware {
/// TelemetryMiddleware::new(events).identify(|request| {
///     let user = request.headers().get("x-user")?.to_str().ok()?;
///     Some(RequestIds::user(user).session("web"))
/// })
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestIds {
    /// The user's distinct id; `None`: the process's.
    pub distinct_id: Option<String>,
    /// The session's id (`$session_id`); `None`: the process's session.
    pub session_id: Option<String>,
}

impl RequestIds {
    /// No ids: events fall back to the process's identity.
    pub fn none() -> Self {
        RequestIds::default()
    }

    /// The request is for user `distinct_id`.
    pub fn user(distinct_id: impl Into<String>) -> Self {
        RequestIds {
            distinct_id: Some(distinct_id.into()),
            session_id: None,
        }
    }

    /// And belongs to session `session_id`.
    pub fn session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Only the ids an event can carry: a distinct id of 1 to [`MAX_DISTINCT_ID_BYTES`] bytes,
    /// a session id of 1 to [`MAX_SESSION_ID_BYTES`]; the others are dropped (an event with an
    /// invalid distinct id would itself be dropped).
    fn checked(self) -> Self {
        RequestIds {
            distinct_id: self
                .distinct_id
                .filter(|id| !id.is_empty() && id.len() <= MAX_DISTINCT_ID_BYTES),
            session_id: self
                .session_id
                .filter(|id| !id.is_empty() && id.len() <= MAX_SESSION_ID_BYTES),
        }
    }

    fn is_empty(&self) -> bool {
        self.distinct_id.is_none() && self.session_id.is_none()
    }
}

type IdsFuture = Pin<Box<dyn Future<Output = Option<RequestIds>>>>;
type IdsSource = dyn Fn(&HttpRequest) -> IdsFuture + Send + Sync;

/// The middleware's settings, shared by every worker's copy.
#[derive(Clone)]
struct Settings {
    events: EventSender,
    distinct_id_header: Option<HeaderName>,
    session_id_header: Option<HeaderName>,
    source: Option<Arc<IdsSource>>,
    request_events: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("distinct_id_header", &self.distinct_id_header)
            .field("session_id_header", &self.session_id_header)
            .field("source", &self.source.as_ref().map(|_| "application"))
            .field("request_events", &self.request_events)
            .finish_non_exhaustive()
    }
}

/// The actix-web middleware: wrap an `App` (or a scope) with it.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use actix_telemetry::{Builder, Record, RequestTelemetry, TelemetryMiddleware};
/// use actix_web::{App, HttpServer, web};
///
/// async fn checkout(telemetry: RequestTelemetry) -> &'static str {
///     telemetry.record(Record::new("checkout_started"));
///     "ok"
/// }
///
/// # actix_web::rt::System::new().block_on(async {
/// let telemetry = Builder::new().endpoint("https://telemetry.example.com").build()?;
/// let events = telemetry.events();
/// HttpServer::new(move || {
///     App::new()
///         .wrap(TelemetryMiddleware::new(events.clone()).request_events(true))
///         .route("/checkout", web::post().to(checkout))
/// })
/// .bind(("127.0.0.1", 8080))?
/// .run()
/// .await?;
/// telemetry.shutdown(std::time::Duration::from_secs(5)).await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TelemetryMiddleware {
    settings: Arc<Settings>,
}

impl TelemetryMiddleware {
    /// Records through `events`, reading ids from the default headers, without request events.
    pub fn new(events: EventSender) -> Self {
        TelemetryMiddleware {
            settings: Arc::new(Settings {
                events,
                distinct_id_header: Some(HeaderName::from_static(DISTINCT_ID_HEADER)),
                session_id_header: Some(HeaderName::from_static(SESSION_ID_HEADER)),
                source: None,
                request_events: false,
            }),
        }
    }

    /// Reads the distinct id from header `name` (`None`: from no header). A name that is not
    /// a valid header name reads nothing.
    pub fn distinct_id_header(mut self, name: Option<&str>) -> Self {
        let settings = Arc::make_mut(&mut self.settings);
        settings.distinct_id_header = name.and_then(|n| HeaderName::try_from(n).ok());
        self
    }

    /// Reads the session id from header `name` (`None`: from no header).
    pub fn session_id_header(mut self, name: Option<&str>) -> Self {
        let settings = Arc::make_mut(&mut self.settings);
        settings.session_id_header = name.and_then(|n| HeaderName::try_from(n).ok());
        self
    }

    /// Takes the ids from the application: `source` sees the request before any handler; when
    /// it answers `None`, the headers are read.
    pub fn identify<F>(mut self, source: F) -> Self
    where
        F: Fn(&HttpRequest) -> Option<RequestIds> + Send + Sync + 'static,
    {
        let settings = Arc::make_mut(&mut self.settings);
        settings.source = Some(Arc::new(move |request: &HttpRequest| {
            let ids = source(request);
            Box::pin(async move { ids }) as IdsFuture
        }));
        self
    }

    /// Takes the ids from extractor `E` (a session cookie, an authenticated user, …), mapped by
    /// `to_ids`; when the extractor fails or `to_ids` answers `None`, the headers are read.
    /// The extractor sees the request without its body.
    pub fn identify_with<E, F>(mut self, to_ids: F) -> Self
    where
        E: FromRequest + 'static,
        F: Fn(E) -> Option<RequestIds> + Send + Sync + 'static,
    {
        let to_ids = Arc::new(to_ids);
        let settings = Arc::make_mut(&mut self.settings);
        settings.source = Some(Arc::new(move |request: &HttpRequest| {
            let extracted = E::extract(request);
            let to_ids = to_ids.clone();
            Box::pin(async move { extracted.await.ok().and_then(|e| to_ids(e)) }) as IdsFuture
        }));
        self
    }

    /// Records one [`REQUEST_EVENT`] per request (off by default), with `method`, `route` (the
    /// matched pattern), `status` and `duration_ms`, for the request's ids.
    pub fn request_events(mut self, enabled: bool) -> Self {
        let settings = Arc::make_mut(&mut self.settings);
        settings.request_events = enabled;
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for TelemetryMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = TelemetryService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(TelemetryService {
            service: Rc::new(service),
            settings: self.settings.clone(),
        }))
    }
}

/// The service [`TelemetryMiddleware`] wraps around the application's.
#[derive(Debug)]
pub struct TelemetryService<S> {
    service: Rc<S>,
    settings: Arc<Settings>,
}

/// The value of header `name`, if it is there and is text.
fn header(request: &ServiceRequest, name: Option<&HeaderName>) -> Option<String> {
    let value = request.headers().get(name?)?.to_str().ok()?.trim();
    Some(value.to_string())
}

impl<S, B> Service<ServiceRequest> for TelemetryService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<ServiceResponse<B>, Error>>>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let settings = self.settings.clone();
        let started = Instant::now();
        Box::pin(async move {
            let from_source = match &settings.source {
                Some(source) => source(request.request()).await,
                None => None,
            };
            let ids = from_source
                .map(RequestIds::checked)
                .filter(|ids| !ids.is_empty())
                .unwrap_or_else(|| {
                    RequestIds {
                        distinct_id: header(&request, settings.distinct_id_header.as_ref()),
                        session_id: header(&request, settings.session_id_header.as_ref()),
                    }
                    .checked()
                });
            // Without request events the middleware keeps nothing past the handler: the
            // context moves into the request, and the method is not copied.
            if !settings.request_events {
                request
                    .extensions_mut()
                    .insert(RequestTelemetry::new(settings, ids));
                return service.call(request).await;
            }
            let context = RequestTelemetry::new(settings.clone(), ids);
            request.extensions_mut().insert(context.clone());
            let method = request.method().as_str().to_string();
            let result = service.call(request).await;
            let (status, route) = match &result {
                Ok(response) => (
                    response.status().as_u16(),
                    response.request().match_pattern(),
                ),
                Err(error) => (error.as_response_error().status_code().as_u16(), None),
            };
            let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            context.record(
                Record::new(REQUEST_EVENT)
                    .property("method", method)
                    .property("route", route.unwrap_or_else(|| UNMATCHED_ROUTE.into()))
                    .property("status", status)
                    .property("duration_ms", duration_ms),
            );
            result
        })
    }
}

/// A request's telemetry context: records events for the request's user and session. Take it
/// as a handler argument (the request must pass through [`TelemetryMiddleware`]); clones
/// share the ids, and it may be moved to other threads and tasks.
///
/// ```
/// use actix_telemetry::{Record, RequestTelemetry};
///
/// async fn sign_in(telemetry: RequestTelemetry) -> &'static str {
///     telemetry.identify("user-42"); // this request's later events are for user-42
///     telemetry.record(Record::new("signed_in"));
///     "welcome"
/// }
/// ```
#[derive(Clone, Debug)]
pub struct RequestTelemetry {
    // One allocation per request, and a clone is one counter increment: the sender is reached
    // through the middleware's settings instead of being cloned (its clone and drop touch
    // counters shared with every other thread that records).
    context: Arc<RequestContext>,
}

/// What the clones of one request's [`RequestTelemetry`] share.
#[derive(Debug)]
struct RequestContext {
    settings: Arc<Settings>,
    ids: Mutex<RequestIds>,
}

impl RequestTelemetry {
    fn new(settings: Arc<Settings>, ids: RequestIds) -> Self {
        RequestTelemetry {
            context: Arc::new(RequestContext {
                settings,
                ids: Mutex::new(ids),
            }),
        }
    }

    fn ids_lock(&self) -> MutexGuard<'_, RequestIds> {
        // The ids are plain values: a panic elsewhere while holding the lock cannot leave
        // them half-written.
        self.context
            .ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The request's ids as they are now.
    pub fn ids(&self) -> RequestIds {
        self.ids_lock().clone()
    }

    /// From now on, this request's events are for user `distinct_id` (the request event too,
    /// if the middleware records one); an empty or overlong id changes nothing.
    pub fn identify(&self, distinct_id: impl Into<String>) {
        let distinct_id = distinct_id.into();
        if !distinct_id.is_empty() && distinct_id.len() <= MAX_DISTINCT_ID_BYTES {
            self.ids_lock().distinct_id = Some(distinct_id);
        }
    }

    /// From now on, this request's events belong to session `session_id`; an empty or overlong
    /// id changes nothing.
    pub fn set_session_id(&self, session_id: impl Into<String>) {
        let session_id = session_id.into();
        if !session_id.is_empty() && session_id.len() <= MAX_SESSION_ID_BYTES {
            self.ids_lock().session_id = Some(session_id);
        }
    }

    /// Records `event` through the bounded [`EventSender`], for the request's user (unless the
    /// event names its own) and in the request's session (unless it sets its own
    /// `$session_id`); false if the admission policy dropped it.
    pub fn record(&self, mut event: Record) -> bool {
        let ids = self.ids();
        if let Some(distinct_id) = ids.distinct_id
            && event
                .identity
                .as_ref()
                .is_none_or(|identity| identity.distinct_id.is_none())
        {
            event = event.distinct_id(distinct_id);
        }
        if let Some(session_id) = ids.session_id
            && !event.properties.keys().any(|name| name == "$session_id")
        {
            event = event.property("$session_id", session_id);
        }
        self.events().record(event)
    }

    /// The sender it records through (events sent on it directly carry no request ids).
    pub fn events(&self) -> &EventSender {
        &self.context.settings.events
    }
}

/// [`RequestTelemetry`] was asked for on a request that did not pass through
/// [`TelemetryMiddleware`]; the handler is answered 500.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("the request has no telemetry context: wrap the App with TelemetryMiddleware")]
#[non_exhaustive]
pub struct MissingMiddleware;

impl ResponseError for MissingMiddleware {}

impl FromRequest for RequestTelemetry {
    type Error = MissingMiddleware;
    type Future = Ready<Result<Self, MissingMiddleware>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            request
                .extensions()
                .get::<RequestTelemetry>()
                .cloned()
                .ok_or(MissingMiddleware),
        )
    }
}
