//! A real Server-Sent Events server on loopback: each `POST` opens a stream the test writes
//! events into; the test can drop a stream or refuse connections with a status.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// A response body fed through a channel; it ends when the sender is dropped.
struct ChannelBody(mpsc::UnboundedReceiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

#[derive(Default)]
struct State {
    /// One sender per stream opened, newest last (`None` once dropped).
    streams: Vec<Option<mpsc::UnboundedSender<Bytes>>>,
    /// Request bodies, in arrival order.
    bodies: Vec<Vec<u8>>,
    refuse: Option<u16>,
    attempts: usize,
}

pub struct SseServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for SseServer {
    fn drop(&mut self) {
        self.task.abort();
        // Ending every stream lets the connection tasks finish.
        self.state.lock().unwrap().streams.clear();
    }
}

impl SseServer {
    pub async fn start() -> SseServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let changed = Arc::new(Notify::new());
        let (s, n) = (state.clone(), changed.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (s, n) = (s.clone(), n.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (s, n) = (s.clone(), n.clone());
                        async move { Ok::<_, Infallible>(answer(req, &s, &n).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        SseServer {
            addr,
            state,
            changed,
            task,
        }
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/stream", self.addr)).unwrap()
    }

    /// Answers later connection attempts with `status` (`None`: accept them).
    pub fn refuse_with(&self, status: Option<u16>) {
        self.state.lock().unwrap().refuse = status;
    }

    /// Connection attempts so far (accepted or refused).
    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts
    }

    /// The JSON bodies of the stream requests.
    pub fn request_bodies(&self) -> Vec<serde_json::Value> {
        let state = self.state.lock().unwrap();
        state
            .bodies
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect()
    }

    /// Waits until `n` streams have been opened.
    pub async fn wait_for_streams(&self, n: usize, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, async {
            loop {
                let notified = self.changed.notified();
                if self.state.lock().unwrap().streams.len() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .is_ok()
    }

    /// Writes raw bytes to the newest stream.
    pub fn send_raw(&self, text: &str) {
        let state = self.state.lock().unwrap();
        if let Some(Some(tx)) = state.streams.last() {
            let _ = tx.send(Bytes::from(text.to_string()));
        }
    }

    /// Writes one event to the newest stream.
    pub fn send(&self, event: &str, data: &serde_json::Value) {
        self.send_raw(&format!("event: {event}\ndata: {data}\n\n"));
    }

    /// Ends the newest stream (the server closes it).
    pub fn drop_stream(&self) {
        if let Some(last) = self.state.lock().unwrap().streams.last_mut() {
            *last = None;
        }
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    changed: &Notify,
) -> Response<ChannelBody> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let (tx, rx) = mpsc::unbounded_channel();
    let refuse = {
        let mut state = state.lock().unwrap();
        state.attempts += 1;
        state.bodies.push(body);
        let refuse = state.refuse;
        if refuse.is_none() {
            // A comment first, as servers do, so the client sees the stream open at once.
            let _ = tx.send(Bytes::from_static(b": open\n\n"));
            state.streams.push(Some(tx));
        }
        refuse
    };
    changed.notify_waiters();
    let mut response = Response::new(ChannelBody(rx));
    match refuse {
        Some(status) => {
            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        }
        None => {
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/event-stream"),
            );
        }
    }
    response
}
