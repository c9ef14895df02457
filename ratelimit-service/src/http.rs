//! `/healthz` and `/metrics` over plain HTTP/1.1, on their own listener (keep it on loopback or
//! a private interface: it is for probes and scrapers, not clients).
//!
//! `/healthz` is 200 `ok` when Redis answers PING within the storage timeout, else 503: a
//! service that cannot count is not healthy, whatever Envoy's failure mode makes of it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use redis::aio::ConnectionManager;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;

/// Connections served at once; more wait in the accept queue (the listener is for probes).
const MAX_CONNECTIONS: usize = 64;

#[derive(Clone)]
pub struct Admin {
    pub metrics: Arc<Metrics>,
    pub redis: ConnectionManager,
    pub timeout: Duration,
}

impl Admin {
    async fn healthy(&self) -> bool {
        let mut redis = self.redis.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut redis);
        matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(ref pong)) if pong == "PONG")
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (status, content_type, body) = match request.uri().path() {
            "/healthz" if self.healthy().await => {
                (StatusCode::OK, "text/plain", "ok\n".to_string())
            }
            "/healthz" => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "redis unavailable\n".to_string(),
            ),
            "/metrics" => (
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found\n".to_string(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    }
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, admin: Admin) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(admin.answer(request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            // A slow or idle client cannot hold a slot for long.
            let _ = tokio::time::timeout(Duration::from_secs(10), connection).await;
            drop(permit);
        });
    }
}
