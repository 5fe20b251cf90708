//! Connection limits (`[server]`) against the running server on 127.0.0.1, plain and TLS:
//! a slowloris client is cut at the header timeout while others are served, a trickling body
//! at the body timeout, and connections past `max_connections` wait for a free slot. The
//! timeouts are real (the network's time), so they are set to a second or two.

use crate::helpers::{TestApp, spawn_app_with, spawn_tls_app_with};
use rustls::pki_types::pem::PemObject as _;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(app: &TestApp) -> String {
    app.base.split("://").nth(1).unwrap().to_string()
}

/// Sends a request head one byte every 300 ms (never finishing it within 30 bytes, 9 s) and
/// returns how long the server took to close the connection.
async fn slowloris<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Duration {
    let started = Instant::now();
    let (mut r, mut w) = tokio::io::split(stream);
    let head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    let writer = async move {
        for b in head.iter().chain(&[b'a'; 30]) {
            if w.write_all(&[*b]).await.is_err() || w.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // Bounded: never send the end of the head; wait for the close.
        std::future::pending::<()>().await;
    };
    let reader = async move {
        let mut buf = [0u8; 512];
        // Closed (0) or reset (Err): either way the server let go. Nothing is answered.
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let bounded = tokio::time::timeout(Duration::from_secs(15), async {
        tokio::select! {
            () = reader => {}
            () = writer => {}
        }
    });
    bounded.await.expect("the slow client is cut off");
    started.elapsed()
}

/// Normal requests keep being served while a slow client holds a connection.
async fn served_meanwhile(app: &TestApp) {
    let client = app.client();
    for _ in 0..3 {
        let started = Instant::now();
        let res = client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(started.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_slowloris_client_is_cut_at_the_header_timeout() {
    let app = spawn_app_with(|c| c.server.header_timeout = 1).await;
    let stream = TcpStream::connect(addr(&app)).await.unwrap();
    let (took, ()) = tokio::join!(slowloris(stream), served_meanwhile(&app));
    eprintln!("plain slowloris disconnected after {took:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_millis(2000), "{took:?}");
}

#[tokio::test]
async fn a_slowloris_client_is_cut_at_the_header_timeout_over_tls() {
    let app = spawn_tls_app_with(|c| c.server.header_timeout = 1).await;
    let mut roots = rustls::RootCertStore::empty();
    let pem = app.ca_pem.clone().unwrap();
    let cert = rustls::pki_types::CertificateDer::from_pem_slice(&pem);
    roots.add(cert.unwrap()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(addr(&app)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (took, ()) = tokio::join!(slowloris(tls), served_meanwhile(&app));
    eprintln!("TLS slowloris disconnected after {took:?}");
    assert!(took < Duration::from_millis(2000), "{took:?}");

    // A client that never even starts the handshake is cut off too.
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr(&app)).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    assert!(started.elapsed() < Duration::from_millis(2000));
}

#[tokio::test]
async fn a_trickling_body_is_cut_at_the_body_timeout() {
    let app = spawn_app_with(|c| c.server.body_timeout = 1).await;
    let mut stream = TcpStream::connect(addr(&app)).await.unwrap();
    let head = "POST /oidc/token HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut r, mut w) = stream.into_split();
    let writer = async move {
        // 40 bytes at 300 ms: 12 s if it were let through; the body never completes.
        for _ in 0..40 {
            if w.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        std::future::pending::<()>().await;
    };
    let reader = async move {
        let mut got = Vec::new();
        let _ = r.read_to_end(&mut got).await;
        got
    };
    let got = tokio::time::timeout(Duration::from_secs(15), async {
        tokio::select! {
            got = reader => got,
            () = writer => unreachable!(),
        }
    })
    .await
    .expect("the trickling body is cut off");
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let app = spawn_app_with(|c| {
        c.server.max_connections = 2;
        // Long enough that the held connections are not cut while the test runs.
        c.server.header_timeout = 10;
    })
    .await;
    // Two connections that hold their slots with an unfinished request head.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The third is accepted by the kernel but not served.
    let mut third = TcpStream::connect(addr(&app)).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let early = tokio::time::timeout(Duration::from_millis(800), third.read(&mut buf)).await;
    assert!(early.is_err(), "served past the cap: {early:?}");
    // One slot freed: the waiting request is served at once.
    let freed = Instant::now();
    drop(held.remove(0));
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), third.read_to_end(&mut got))
        .await
        .expect("served once a slot is free")
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(freed.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_stops_accepting() {
    let app = spawn_app_with(|c| c.server.header_timeout = 30).await;
    let a = addr(&app);
    let mut idle = TcpStream::connect(&a).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // The oneshot, as `serve` does on SIGTERM: the kept-alive connection, idle between
    // requests, is closed at once rather than after header_timeout.
    let started = Instant::now();
    drop(app);
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), idle.read_to_end(&mut rest))
        .await
        .expect("the idle connection is closed on shutdown")
        .ok();
    assert!(started.elapsed() < Duration::from_secs(3));
    // And the listener is gone.
    let refused = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if TcpStream::connect(&a).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "still accepting after shutdown");
}
