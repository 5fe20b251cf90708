//! The client against the built-in mock on 127.0.0.1.

use super::generate::generate;
use super::mock::{Kind, Mock, spawn_for_tests};
use crate::sync::ss12000::client::*;
use crate::sync::ss12000::types::Deleted;
use serde_json::json;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2025, 10, 1).unwrap()
}

fn config(base: url::Url) -> ClientConfig {
    ClientConfig {
        page_size: 50,
        max_retries: 3,
        retry_base: Duration::from_millis(1),
        timeout: Duration::from_secs(10),
        ..ClientConfig::new(base)
    }
}

fn quiet(_: &Progress) {}

#[tokio::test]
async fn snapshot_reads_every_record_once_over_many_pages() {
    let data = generate(3, 1200, today());
    let counts: Vec<usize> = Kind::ALL.iter().map(|&k| data.len(k)).collect();
    let mock = Mock::new(data);
    let base = spawn_for_tests(mock.clone()).await;
    let client = Client::new(config(base)).unwrap();
    let seen = StdMutex::new(Vec::new());
    let snap = client
        .snapshot(&|p: &Progress| seen.lock().unwrap().push(p.clone()))
        .await
        .unwrap();
    assert_eq!(
        [
            snap.organisations.len(),
            snap.persons.len(),
            snap.groups.len(),
            snap.duties.len()
        ],
        [counts[0], counts[1], counts[2], counts[3]]
    );
    let ids: std::collections::HashSet<&str> = snap.persons.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), snap.persons.len(), "no record twice");
    let pages_expected: u64 = counts.iter().map(|&c| (c as u64).div_ceil(50).max(1)).sum();
    assert_eq!(snap.report.requests, pages_expected);
    assert_eq!(snap.report.retries, 0);
    assert_eq!(mock.requests(), pages_expected);
    let seen = seen.into_inner().unwrap();
    let last_persons = seen.iter().rev().find(|p| p.entity == "persons").unwrap();
    assert_eq!(last_persons.records, counts[1] as u64);
    assert_eq!(last_persons.pages, (counts[1] as u64).div_ceil(50));
    assert_eq!(seen.first().unwrap().entity, "organisations");
    assert_eq!(seen.last().unwrap().entity, "duties");
}

#[tokio::test]
async fn throttling_is_retried() {
    let mock = Mock::new(generate(1, 100, today()));
    let base = spawn_for_tests(mock.clone()).await;
    mock.throttle(2);
    let snap = Client::new(config(base))
        .unwrap()
        .snapshot(&quiet)
        .await
        .unwrap();
    assert_eq!(snap.report.retries, 2);
    assert_eq!(snap.persons.len(), mock.len(Kind::Person));
}

#[tokio::test]
async fn a_page_failing_beyond_the_retries_fails_the_snapshot() {
    let mock = Mock::new(generate(1, 200, today()));
    let base = spawn_for_tests(mock.clone()).await;
    let client = Client::new(config(base)).unwrap();
    // Two failures at page 2 are absorbed…
    mock.fail_page("/persons", 2, 500, 2);
    let snap = client.snapshot(&quiet).await.unwrap();
    assert_eq!(snap.report.retries, 2);
    assert_eq!(snap.persons.len(), mock.len(Kind::Person));
    // …four (more than max_retries = 3) are not, and nothing partial comes back.
    mock.fail_page("/persons", 2, 500, 4);
    let err = client.snapshot(&quiet).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, SourceError::GaveUp { retries: 3, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("GET /v2.0/persons") && msg.contains("after 3 retries"),
        "{msg}"
    );
    assert!(msg.contains("500"), "{msg}");
    assert!(!msg.contains('?'), "no query string in the message: {msg}");
    // Other 4xx are not retried.
    mock.fail_page("/groups", 1, 404, 1);
    let before = mock.requests();
    let err = client.snapshot(&quiet).await.unwrap_err();
    assert!(matches!(err, SourceError::Status { .. }), "{err}");
    assert!(err.to_string().contains("InjectedFault"), "{err}");
    let pages_before_groups = 1 + (mock.len(Kind::Person) as u64).div_ceil(50);
    assert_eq!(mock.requests() - before, pages_before_groups + 1);
}

#[tokio::test]
async fn bearer_token_required() {
    let mock = Mock::new(generate(1, 100, today()));
    mock.require_bearer("ratt-token");
    let base = spawn_for_tests(mock.clone()).await;
    let ok = Client::new(ClientConfig {
        auth: Auth::Bearer("ratt-token".into()),
        ..config(base.clone())
    })
    .unwrap();
    assert!(!ok.snapshot(&quiet).await.unwrap().persons.is_empty());
    for auth in [Auth::None, Auth::Bearer("fel-token".into())] {
        let client = Client::new(ClientConfig {
            auth,
            ..config(base.clone())
        })
        .unwrap();
        let err = client.snapshot(&quiet).await.unwrap_err();
        assert!(matches!(err, SourceError::Unauthorized { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("401") && msg.contains("/v2.0/organisations"),
            "{msg}"
        );
        assert!(!msg.contains("fel-token"));
    }
}

#[tokio::test]
async fn client_credentials_token_is_cached_and_renewed_on_401() {
    let mock = Mock::new(generate(1, 100, today()));
    mock.enable_client_credentials("portvakt id", "hemlig:nyckel&", 3600);
    let base = spawn_for_tests(mock.clone()).await;
    let cc = |secret: &str| Auth::ClientCredentials {
        token_url: base.join("token").unwrap(),
        client_id: "portvakt id".into(),
        client_secret: secret.into(),
        scope: Some("ss12000".into()),
    };
    let client = Client::new(ClientConfig {
        auth: cc("hemlig:nyckel&"),
        ..config(base.clone())
    })
    .unwrap();
    client.snapshot(&quiet).await.unwrap();
    assert_eq!(mock.token_requests(), 1, "one token for the whole run");
    client.snapshot(&quiet).await.unwrap();
    assert_eq!(mock.token_requests(), 1, "cached across runs");
    mock.revoke_tokens();
    client.snapshot(&quiet).await.unwrap();
    assert_eq!(mock.token_requests(), 2, "renewed once after a 401");

    let wrong = Client::new(ClientConfig {
        auth: cc("gissat"),
        ..config(base.clone())
    })
    .unwrap();
    let err = wrong.snapshot(&quiet).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SourceError::Token { .. }), "{msg}");
    assert!(
        msg.contains("invalid_client") && msg.contains("client id and secret"),
        "{msg}"
    );
    assert!(!msg.contains("gissat"));
    assert!(!format!("{:?}", cc("gissat")).contains("gissat"));
}

#[tokio::test]
async fn changes_reads_modified_after_and_deletions() {
    let data = generate(5, 300, today());
    let stamp = data.records(Kind::Person).next().unwrap().1;
    let person_ids: Vec<String> = data
        .records(Kind::Person)
        .map(|r| r.0.to_string())
        .collect();
    let group_id = data.records(Kind::Group).next().unwrap().0.to_string();
    let mock = Mock::new(data);
    let base = spawn_for_tests(mock.clone()).await;
    let client = Client::new(config(base)).unwrap();

    let none = client.changes(stamp, &quiet).await.unwrap();
    assert!(none.changed.persons.is_empty() && none.changed.organisations.is_empty());
    assert_eq!(none.deleted, Deleted::default());

    let now = stamp + 3600;
    let changed = json!({
        "id": person_ids[0],
        "givenName": "Öjvind",
        "familyName": "Ängström",
        "favouriteColour": "grön"
    });
    mock.upsert_at(Kind::Person, changed, now).unwrap();
    mock.delete_at(Kind::Person, &person_ids[1], now);
    mock.delete_at(Kind::Group, &group_id, now);

    let set = client.changes(now - 1, &quiet).await.unwrap();
    assert_eq!(set.changed.persons.len(), 1);
    assert_eq!(set.changed.persons[0].given_name, "Öjvind");
    assert_eq!(set.changed.persons[0].modified, now);
    assert_eq!(
        set.changed
            .report
            .unknown_fields
            .get("Person.favouriteColour"),
        Some(&1)
    );
    assert_eq!(set.deleted.persons, vec![person_ids[1].clone()]);
    assert_eq!(set.deleted.groups, vec![group_id]);
    // Exclusive: nothing changed after `now`.
    let later = client.changes(now, &quiet).await.unwrap();
    assert!(later.changed.persons.is_empty() && later.deleted.persons.is_empty());
}

#[tokio::test]
async fn a_repeated_page_token_is_an_error() {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/v2.0/organisations",
        get(|| async { axum::Json(json!({ "data": [], "pageToken": "same" })) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let base = url::Url::parse(&format!("http://{addr}/v2.0/")).unwrap();
    let err = Client::new(config(base))
        .unwrap()
        .snapshot(&quiet)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::PageLoop { .. }), "{err}");
}

/// Found by the `ss12000_page` fuzz target: a body that names `pageToken` twice. A JSON
/// value keeps the last one and a typed reader refuses the duplicate, so two readers of the
/// same page could disagree on where the next page is. The client reads the token first and
/// refuses such a page: the run fails with the page's path, nothing is read from it.
#[tokio::test]
async fn a_page_that_names_its_page_token_twice_fails_the_run() {
    use axum::routing::get;
    const BODY: &str = r#"{"data": [], "pageToken": [], "pageToken": null}"#;
    let app = axum::Router::new().route(
        "/v2.0/organisations",
        get(|| async { ([("content-type", "application/json")], BODY) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let base = url::Url::parse(&format!("http://{addr}/v2.0/")).unwrap();
    let err = Client::new(config(base))
        .unwrap()
        .snapshot(&quiet)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Parse { .. }), "{err}");
    assert!(err.to_string().contains("organisations"), "{err}");
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let base = url::Url::parse(&format!("http://{addr}/v2.0/")).unwrap();
    let err = Client::new(config(base))
        .unwrap()
        .snapshot(&quiet)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("after 3 retries") && msg.contains("cannot connect"),
        "{msg}"
    );
}

#[test]
fn config_is_checked_and_secrets_are_not_printed() {
    let base = url::Url::parse("http://127.0.0.1:1/v2.0").unwrap();
    assert!(matches!(
        Client::new(config(base)),
        Err(SourceError::Config(_))
    ));
    let cfg = ClientConfig {
        auth: Auth::Bearer("topphemlig".into()),
        ..ClientConfig::new(url::Url::parse("http://127.0.0.1:1/v2.0/").unwrap())
    };
    assert!(!format!("{cfg:?}").contains("topphemlig"));
    let missing = ClientConfig {
        ca_cert: Some("/nonexistent/ca.pem".into()),
        ..cfg
    };
    let err = Client::new(missing).err().unwrap();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

/// Timings for a large municipality (run with `--ignored --nocapture`, ideally `--release`;
/// `SS12000_PERSONS` sets the size, 500,000 by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow; a measurement, not a check"]
async fn large_municipality_timings() {
    let n: usize = std::env::var("SS12000_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let t = std::time::Instant::now();
    let data = generate(1, n, today());
    let generated = t.elapsed();
    let bytes: usize = Kind::ALL
        .iter()
        .flat_map(|&k| data.records(k).map(|(id, _, j)| id.len() + j.len()))
        .sum();
    let persons = data.len(Kind::Person);
    let mock = Mock::new(data);
    let base = spawn_for_tests(mock.clone()).await;

    // The mock alone: raw page fetches of every person, no parsing.
    let http = reqwest::Client::new();
    let t = std::time::Instant::now();
    let mut url = base.join("persons?limit=1000").unwrap();
    let mut served = 0usize;
    loop {
        let body = http
            .get(url.clone())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        served += body.len();
        let tail = std::str::from_utf8(&body[body.len().saturating_sub(200)..]).unwrap_or("");
        match tail.rsplit_once("\"pageToken\":\"") {
            Some((_, rest)) => {
                let token = rest.trim_end_matches("\"}");
                url = base
                    .join(&format!("persons?limit=1000&pageToken={token}"))
                    .unwrap();
            }
            None => break,
        }
    }
    let mock_only = t.elapsed();

    let client = Client::new(ClientConfig {
        page_size: 1000,
        ..config(base)
    })
    .unwrap();
    let t = std::time::Instant::now();
    let snap = client.snapshot(&quiet).await.unwrap();
    let fetched = t.elapsed();
    assert_eq!(snap.persons.len(), persons);
    println!(
        "persons {persons}: generate {generated:.2?}, stored {} MB, mock serves persons ({} MB) in {mock_only:.2?}, client snapshot {fetched:.2?} ({} requests)",
        bytes / 1_000_000,
        served / 1_000_000,
        snap.report.requests
    );
}
