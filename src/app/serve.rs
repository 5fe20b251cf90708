//! The accept loop for plain HTTP and TLS alike, with the connection limits of `[server]`.
//! `axum::serve` and axum-server expose neither hyper's header read timeout nor a cap on
//! connections, so connections are served with hyper's HTTP/1 builder here.

use crate::config::ServerConfig;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The timeouts that apply once a request's headers are in (`deadlines`).
#[derive(Clone, Copy)]
pub(super) struct Deadlines {
    body: Duration,
    request: Duration,
}

impl Deadlines {
    pub(super) fn new(s: &ServerConfig) -> Self {
        Self {
            body: Duration::from_secs(s.body_timeout),
            request: Duration::from_secs(s.request_timeout),
        }
    }
}

/// Middleware: the body must arrive within `body_timeout` (408) and the response within
/// `request_timeout` (503). Either closes the connection, whose state is then unknown.
pub(super) async fn deadlines(State(d): State<Deadlines>, req: Request, next: Next) -> Response {
    let late = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(d.body)),
            late: late.clone(),
        })
    });
    let mut res = match tokio::time::timeout(d.request, next.run(req)).await {
        // The handler saw a body error (and answered 400); say what happened.
        Ok(_) if late.load(Ordering::Relaxed) => StatusCode::REQUEST_TIMEOUT.into_response(),
        Ok(res) => return res,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// A request body that fails once its deadline has passed, however it trickles in (hyper
/// bounds only the headers).
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    late: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within body_timeout")]
struct BodyTimedOut;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.late.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Accepts and serves connections until `shutdown` completes, then drains them for at most
/// `request_timeout` (no request may run longer).
pub(super) async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    limits: &ServerConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let header_timeout = Duration::from_secs(limits.header_timeout);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let app = TowerToHyperService::new(router);
    tokio::pin!(shutdown);
    loop {
        // A slot before accepting: past the cap, connections wait in the kernel's backlog
        // instead of each holding a socket and a task.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, or the peer gone before accept: pause
                    // rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        // The peer address for the edge (client address, throttling), as axum::serve gives it.
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.call(req)
        });
        let http = http.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let result = match tls {
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), svc);
                    watcher.watch(conn).await
                }
                Some(tls) => {
                    // A handshake that never finishes is a slowloris too.
                    let stream =
                        match tokio::time::timeout(header_timeout, tls.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = http.serve_connection(TokioIo::new(stream), svc);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    // Stop accepting, then let open requests finish.
    drop(listener);
    let drain = Duration::from_secs(limits.request_timeout);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {drain:?}; stopping anyway");
    }
    Ok(())
}

/// The rustls configuration of `[tls]`: HTTP/1.1 only (no h2 is served). `clients` asks for
/// client certificates and judges them (a push source's listener); None asks for none.
pub(super) fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
    clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> anyhow::Result<rustls::ServerConfig> {
    use anyhow::Context as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("[tls] cert: cannot load {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("[tls] key: cannot load {}", key.display()))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match clients {
        None => builder.with_no_client_auth(),
        Some(verifier) => builder.with_client_cert_verifier(verifier),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .context("[tls] cert and key do not fit together: set the key of that certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
