//! The mock's protocol: paging, filters, tombstones, faults, auth.

use super::http::Cursor;
use super::*;
use serde_json::json;

fn org(id: &str, modified: &str) -> Value {
    json!({
        "id": id,
        "meta": { "created": modified, "modified": modified },
        "displayName": format!("Enhet {id}"),
        "organisationType": "Skolenhet",
        "favouriteColour": "blå"
    })
}

fn sample() -> Dataset {
    let orgs: Vec<Value> = (0..5)
        .map(|i| org(&format!("o{i}"), &format!("2025-01-0{}T00:00:00Z", i + 1)))
        .collect();
    Dataset::from_values(&orgs, &[], &[], &[]).unwrap()
}

async fn get(url: &url::Url, path: &str) -> (u16, Value) {
    let r = reqwest::get(url.join(path).unwrap()).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn pages_by_id_and_refuses_filters_with_a_token() {
    let base = spawn_for_tests(Mock::new(sample())).await;
    let (s, page1) = get(&base, "organisations?limit=2").await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["o0", "o1"]);
    // Unknown fields are served as given.
    assert_eq!(page1["data"][0]["favouriteColour"], "blå");
    let token = page1["pageToken"].as_str().unwrap();
    let (_, page2) = get(&base, &format!("organisations?limit=2&pageToken={token}")).await;
    assert_eq!(page2["data"][0]["id"], "o2");
    let (s, err) = get(
        &base,
        &format!("organisations?pageToken={token}&meta.modified.after=2025-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(err["code"], "InvalidRequest");
    let (_, last) = get(&base, "organisations?limit=5").await;
    assert_eq!(last["data"].as_array().unwrap().len(), 5);
    assert!(last["pageToken"].is_null());
}

#[tokio::test]
async fn modified_after_is_exclusive_and_carried_by_the_token() {
    let base = spawn_for_tests(Mock::new(sample())).await;
    let (_, p) = get(
        &base,
        "organisations?limit=1&meta.modified.after=2025-01-03T00:00:00%2B00:00",
    )
    .await;
    assert_eq!(p["data"][0]["id"], "o3");
    let token = p["pageToken"].as_str().unwrap();
    let (_, p) = get(&base, &format!("organisations?limit=1&pageToken={token}")).await;
    assert_eq!(p["data"][0]["id"], "o4");
    assert!(p["pageToken"].is_null());
}

#[tokio::test]
async fn upsert_delete_and_tombstones() {
    let mock = Mock::new(sample());
    let base = spawn_for_tests(mock.clone()).await;
    // A stale modified time is bumped to now so incremental readers see the change.
    mock.upsert_at(
        Kind::Organisation,
        org("o1", "2020-01-01T00:00:00Z"),
        1_800_000_000,
    )
    .unwrap();
    let (_, one) = get(&base, "organisations/o1").await;
    assert_eq!(one["meta"]["modified"], "2027-01-15T08:00:00Z");
    assert!(mock.delete_at(Kind::Organisation, "o2", 1_800_000_100));
    assert!(!mock.delete_at(Kind::Organisation, "o2", 1_800_000_100));
    assert_eq!(mock.len(Kind::Organisation), 4);
    let (s, _) = get(&base, "organisations/o2").await;
    assert_eq!(s, 404);
    let (_, d) = get(&base, "deletedEntities?after=2027-01-15T08:00:00Z&entities=Organisation&entities=Person&entities=Activity").await;
    assert_eq!(d["data"]["organisations"], json!(["o2"]));
    assert_eq!(d["data"]["persons"], json!([]));
    assert!(d["data"].get("groups").is_none());
    let (_, d) = get(&base, "deletedEntities?after=2027-01-15T08:01:40Z").await;
    assert_eq!(d["data"]["organisations"], json!([]));
    let (s, _) = get(&base, "deletedEntities?entities=Hamster").await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn faults_throttling_and_bearer() {
    let mock = Mock::new(sample());
    let base = spawn_for_tests(mock.clone()).await;
    mock.fail_page("/organisations", 1, 503, 1);
    assert_eq!(get(&base, "organisations").await.0, 503);
    assert_eq!(get(&base, "organisations").await.0, 200);
    mock.throttle(1);
    let r = reqwest::get(base.join("organisations").unwrap())
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "0");
    mock.require_bearer("s3cret");
    assert_eq!(get(&base, "organisations").await.0, 401);
    let r = reqwest::Client::new()
        .get(base.join("organisations").unwrap())
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(mock.requests(), 5);
}

#[test]
fn cursor_round_trip() {
    let c = Cursor {
        page: 3,
        after: Some(-5),
        mask: 9,
        position: "a|b".into(),
    };
    assert_eq!(Cursor::decode(&c.encode()), Some(c));
    assert_eq!(Cursor::decode("not a token"), None);
}
