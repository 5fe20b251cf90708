//! The SS 12000 v2.1 API client: full snapshots and incremental change sets
//! (specs/ss12000.md §3, §4, §6, §7).
//!
//! All or nothing: a page that still fails after the retries fails the whole call, so the
//! plan never sees half a register. Retries back off exponentially on 429/5xx and transport
//! failures and honour `Retry-After`. Tokens (static or OAuth2 client credentials) never
//! reach a log or an error message. One HTTP stack (reqwest) and one TLS stack (rustls).

use super::parse::{self, Entity, ParseError};
use super::types::{ChangeSet, Deleted, ParseReport, Snapshot};
use reqwest::StatusCode;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::time::Duration;
use token::CachedToken;
use tokio::sync::Mutex;

/// The longest wait a `Retry-After` can ask for; a register asking for more is treated as
/// asking for this much.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The longest exponential backoff step.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How to reach one register.
#[derive(Clone)]
pub struct ClientConfig {
    /// The API base, ending in `/`, e.g. `https://register.example/v2.0/`.
    pub base_url: url::Url,
    pub auth: Auth,
    pub page_size: u32,
    pub max_retries: u32,
    pub retry_base: Duration,
    /// Per request.
    pub timeout: Duration,
    /// PEM certificate chain and PEM private key, for registers that require mTLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// An extra trust anchor (PEM), e.g. the register's private CA.
    pub ca_cert: Option<PathBuf>,
}

impl ClientConfig {
    /// The defaults: pages of 1000, 5 retries from 500 ms, 60 s per request, no auth.
    pub fn new(base_url: url::Url) -> Self {
        ClientConfig {
            base_url,
            auth: Auth::None,
            page_size: 1000,
            max_retries: 5,
            retry_base: Duration::from_millis(500),
            timeout: Duration::from_secs(60),
            client_cert: None,
            ca_cert: None,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url.as_str())
            .field("auth", &self.auth)
            .field("page_size", &self.page_size)
            .field("max_retries", &self.max_retries)
            .field("retry_base", &self.retry_base)
            .field("timeout", &self.timeout)
            .field("client_cert", &self.client_cert)
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

/// How the client proves itself to the register (specs/ss12000.md §7).
#[derive(Clone)]
pub enum Auth {
    None,
    Bearer(String),
    /// OAuth2 client credentials (RFC 6749 §4.4) with HTTP Basic client authentication.
    ClientCredentials {
        token_url: url::Url,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
    },
}

/// Secrets are never printed, not even in debug output.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::ClientCredentials {
                token_url,
                client_id,
                scope,
                ..
            } => f
                .debug_struct("ClientCredentials")
                .field("token_url", &token_url.as_str())
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .field("scope", scope)
                .finish(),
        }
    }
}

/// Reported after every page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// `organisations`, `persons`, `groups`, `duties` or `deletedEntities`.
    pub entity: &'static str,
    /// Records read so far for this entity.
    pub records: u64,
    pub pages: u64,
}

/// Why a run failed; each message names the path and what an administrator can check.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("SS 12000 source configuration: {0}")]
    Config(String),
    #[error("cannot read {what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client (check the client certificate, key and CA files)")]
    HttpClient(#[source] reqwest::Error),
    #[error(
        "GET {path}: the register refused the credentials (401); check the token or the client id and secret"
    )]
    Unauthorized { path: String },
    #[error(
        "GET {path}: access denied (403){detail}; the client may lack the scope or the school units for this data"
    )]
    Forbidden { path: String, detail: String },
    #[error("GET {path}: the register answered {status}{detail}")]
    Status {
        path: String,
        status: StatusCode,
        detail: String,
    },
    #[error("{method} {path}: still failing after {retries} retries: {last}")]
    GaveUp {
        method: &'static str,
        path: String,
        retries: u32,
        last: String,
    },
    #[error("token endpoint {path}: {detail}")]
    Token { path: String, detail: String },
    #[error("GET {path}: the response is not an SS 12000 list: {source}")]
    Parse {
        path: String,
        #[source]
        source: ParseError,
    },
    #[error("GET {path}: the register repeated a pageToken, so paging would never end")]
    PageLoop { path: String },
}

/// A reader of one SS 12000 register.
pub struct Client {
    http: reqwest::Client,
    cfg: ClientConfig,
    token: Mutex<Option<CachedToken>>,
}

/// What one call has done so far.
#[derive(Default)]
struct Run {
    report: ParseReport,
}

/// Pages parsed at once: the machine's two cores, one of them also fetching.
const PARSERS: usize = 2;

/// The position in one collection's pages: the first request carries `limit` and the
/// filters, the next ones only `limit` and `pageToken` (a filter with a token is a 400,
/// specs/ss12000.md §4).
struct Walker {
    url: url::Url,
    path: String,
    limit: String,
    filters: Vec<(String, String)>,
    seen: HashSet<String>,
    token: Option<String>,
    done: bool,
}

impl Walker {
    async fn fetch(
        &mut self,
        client: &Client,
        run: &mut Run,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        if self.done {
            return Ok(None);
        }
        {
            let mut q = self.url.query_pairs_mut();
            q.clear().append_pair("limit", &self.limit);
            match &self.token {
                Some(t) => {
                    q.append_pair("pageToken", t);
                }
                None => {
                    for (k, v) in &self.filters {
                        q.append_pair(k, v);
                    }
                }
            }
        }
        client.get(&self.url, &self.path, run).await.map(Some)
    }

    /// The next page's token (None: that was the last page).
    fn advance(&mut self, next: Option<String>) -> Result<(), SourceError> {
        match next {
            None => self.done = true,
            Some(t) => {
                // Every token is remembered, so a cycle is caught as well as a repeat.
                if !self.seen.insert(t.clone()) {
                    return Err(SourceError::PageLoop {
                        path: self.path.clone(),
                    });
                }
                self.token = Some(t);
            }
        }
        Ok(())
    }
}

/// One attempt's outcome, for the retry loop.
enum Attempt {
    Done(Vec<u8>),
    /// Retry after this long (None: the backoff schedule).
    Retry(String, Option<Duration>),
    /// 401 from the API: renew the token once and try again.
    Renew,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Self, SourceError> {
        if cfg.page_size == 0 {
            return Err(SourceError::Config("page_size must be at least 1".into()));
        }
        if cfg.base_url.cannot_be_a_base() || !cfg.base_url.path().ends_with('/') {
            return Err(SourceError::Config(format!(
                "the base URL {} must end with / (e.g. …/v2.0/)",
                cfg.base_url.path()
            )));
        }
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            // A register that redirects is misconfigured; following could leak the token.
            .redirect(reqwest::redirect::Policy::none());
        if let Some((cert, key)) = &cfg.client_cert {
            let mut pem = read(cert, "the client certificate")?;
            pem.push(b'\n');
            pem.extend(read(key, "the client key")?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(SourceError::HttpClient)?;
            b = b.identity(identity);
        }
        if let Some(ca) = &cfg.ca_cert {
            let pem = read(ca, "the CA certificate")?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(SourceError::HttpClient)?;
            if certs.is_empty() {
                return Err(SourceError::Config(format!(
                    "{} holds no PEM certificate",
                    ca.display()
                )));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b.build().map_err(SourceError::HttpClient)?;
        Ok(Client {
            http,
            cfg,
            token: Mutex::new(None),
        })
    }

    /// Full run: organisations → persons → groups → duties, every page (the dependency
    /// order of specs/ss12000.md §6). Any page failing after the retries fails the call.
    pub async fn snapshot(
        &self,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<Snapshot, SourceError> {
        self.read_all(&[], progress).await
    }

    /// Incremental: each type modified after `since` (unix seconds), then the deletions.
    pub async fn changes(
        &self,
        since: i64,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<ChangeSet, SourceError> {
        let after = chrono::DateTime::from_timestamp(since, 0)
            .ok_or_else(|| SourceError::Config(format!("{since} is not a valid time")))?
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut changed = self
            .read_all(&[("meta.modified.after", after.as_str())], progress)
            .await?;
        let mut run = Run {
            report: std::mem::take(&mut changed.report),
        };
        let mut filters = vec![("after", after.as_str())];
        for e in ["Organisation", "Person", "Group", "Duty"] {
            filters.push(("entities", e));
        }
        let mut deleted = Deleted::default();
        let mut pages = 0;
        let mut records = 0;
        self.pages("deletedEntities", &filters, &mut run, |body, report| {
            let page = parse::deleted_page(body, report)?;
            for d in page.items {
                records +=
                    (d.organisations.len() + d.persons.len() + d.groups.len() + d.duties.len())
                        as u64;
                deleted.organisations.extend(d.organisations);
                deleted.persons.extend(d.persons);
                deleted.groups.extend(d.groups);
                deleted.duties.extend(d.duties);
            }
            pages += 1;
            progress(&Progress {
                entity: "deletedEntities",
                records,
                pages,
            });
            Ok(page.page_token)
        })
        .await?;
        changed.report = run.report;
        Ok(ChangeSet { changed, deleted })
    }

    async fn read_all(
        &self,
        filters: &[(&str, &str)],
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<Snapshot, SourceError> {
        let mut run = Run::default();
        let organisations = self.list(filters, &mut run, progress).await?;
        let persons = self.list(filters, &mut run, progress).await?;
        let groups = self.list(filters, &mut run, progress).await?;
        let duties = self.list(filters, &mut run, progress).await?;
        Ok(Snapshot {
            organisations,
            persons,
            groups,
            duties,
            report: run.report,
        })
    }

    /// Every page of one collection. Pages are parsed on the blocking pool, at most
    /// `PARSERS` at a time, while the next one is fetched; items stay in page order.
    async fn list<T: Entity + Send + 'static>(
        &self,
        filters: &[(&str, &str)],
        run: &mut Run,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<Vec<T>, SourceError> {
        type Parsed<T> = tokio::task::JoinHandle<Result<(Vec<T>, ParseReport), ParseError>>;
        let mut walker = self.walker(T::PLURAL, filters)?;
        let mut pending: std::collections::VecDeque<Parsed<T>> = Default::default();
        let mut items = Vec::new();
        let mut pages = 0;
        let mut collect =
            |done: Result<Result<(Vec<T>, ParseReport), ParseError>, tokio::task::JoinError>,
             run: &mut Run,
             path: &str|
             -> Result<(), SourceError> {
                let (page, report) = done
                    .map_err(|e| SourceError::Config(format!("a parser task failed: {e}")))?
                    .map_err(|source| SourceError::Parse {
                        path: path.to_string(),
                        source,
                    })?;
                run.report.merge(report);
                items.extend(page);
                pages += 1;
                progress(&Progress {
                    entity: T::PLURAL,
                    records: items.len() as u64,
                    pages,
                });
                Ok(())
            };
        while let Some(body) = walker.fetch(self, run).await? {
            let token = parse::peek_page_token(&body).map_err(|source| SourceError::Parse {
                path: walker.path.clone(),
                source,
            })?;
            pending.push_back(tokio::task::spawn_blocking(move || {
                let mut report = ParseReport::default();
                parse::page::<T>(&body, &mut report).map(|p| (p.items, report))
            }));
            while pending.len() >= PARSERS {
                if let Some(h) = pending.pop_front() {
                    collect(h.await, run, &walker.path)?;
                }
            }
            walker.advance(token)?;
        }
        while let Some(h) = pending.pop_front() {
            collect(h.await, run, &walker.path)?;
        }
        Ok(items)
    }

    fn walker(
        &self,
        collection: &'static str,
        filters: &[(&str, &str)],
    ) -> Result<Walker, SourceError> {
        let url = self
            .cfg
            .base_url
            .join(collection)
            .map_err(|e| SourceError::Config(format!("the base URL: {e}")))?;
        Ok(Walker {
            path: url.path().to_string(),
            url,
            limit: self.cfg.page_size.to_string(),
            filters: filters
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            seen: HashSet::new(),
            token: None,
            done: false,
        })
    }

    /// Walks the pages of `collection`, parsing each in `on_page` (which returns the next
    /// page token).
    async fn pages(
        &self,
        collection: &'static str,
        filters: &[(&str, &str)],
        run: &mut Run,
        mut on_page: impl FnMut(&[u8], &mut ParseReport) -> Result<Option<String>, ParseError>,
    ) -> Result<(), SourceError> {
        let mut walker = self.walker(collection, filters)?;
        while let Some(body) = walker.fetch(self, run).await? {
            let next = on_page(&body, &mut run.report).map_err(|source| SourceError::Parse {
                path: walker.path.clone(),
                source,
            })?;
            walker.advance(next)?;
        }
        Ok(())
    }

    /// One GET with retries; the body of a 2xx answer.
    async fn get(&self, url: &url::Url, path: &str, run: &mut Run) -> Result<Vec<u8>, SourceError> {
        let mut renewed = false;
        let mut retries = 0;
        loop {
            let bearer = self.bearer(run).await?;
            let mut req = self.http.get(url.clone());
            if let Some(t) = &bearer {
                req = req.bearer_auth(t);
            }
            run.report.requests += 1;
            let outcome = match req.send().await {
                Err(e) => Attempt::Retry(transport(&e), None),
                Ok(resp) => self.classify(resp, path).await?,
            };
            match outcome {
                Attempt::Done(body) => return Ok(body),
                Attempt::Renew => {
                    let renewable = matches!(self.cfg.auth, Auth::ClientCredentials { .. });
                    if renewed || !renewable {
                        return Err(SourceError::Unauthorized { path: path.into() });
                    }
                    // The token may have been revoked or expired early: one fresh token.
                    renewed = true;
                    *self.token.lock().await = None;
                }
                Attempt::Retry(last, after) => {
                    if retries >= self.cfg.max_retries {
                        return Err(SourceError::GaveUp {
                            method: "GET",
                            path: path.into(),
                            retries,
                            last,
                        });
                    }
                    tokio::time::sleep(after.unwrap_or_else(|| self.backoff(retries))).await;
                    retries += 1;
                    run.report.retries += 1;
                }
            }
        }
    }

    /// Sorts an API answer into done, retry, renew or a final error.
    async fn classify(&self, resp: reqwest::Response, path: &str) -> Result<Attempt, SourceError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(match resp.bytes().await {
                Ok(b) => Attempt::Done(b.into()),
                // The body broke off (timeout, reset): worth another try.
                Err(e) => Attempt::Retry(transport(&e), None),
            });
        }
        if status == StatusCode::UNAUTHORIZED {
            return Ok(Attempt::Renew);
        }
        if retryable(status) {
            let after = retry_after(resp.headers());
            let detail = error_detail(resp).await;
            return Ok(Attempt::Retry(format!("{status}{detail}"), after));
        }
        let detail = error_detail(resp).await;
        Err(if status == StatusCode::FORBIDDEN {
            SourceError::Forbidden {
                path: path.into(),
                detail,
            }
        } else {
            SourceError::Status {
                path: path.into(),
                status,
                detail,
            }
        })
    }

    /// `retry_base · 2^n`, capped, plus up to a quarter of jitter so that several clients
    /// do not return in step.
    fn backoff(&self, n: u32) -> Duration {
        let step = self
            .cfg
            .retry_base
            .saturating_mul(1u32 << n.min(16))
            .min(MAX_BACKOFF);
        let jitter_range = step.as_millis() as u64 / 4;
        let jitter = if jitter_range == 0 {
            0
        } else {
            // RandomState is freshly keyed per call: randomness without a dependency.
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
                % jitter_range
        };
        step + Duration::from_millis(jitter)
    }
}

fn read(path: &PathBuf, what: &'static str) -> Result<Vec<u8>, SourceError> {
    std::fs::read(path).map_err(|source| SourceError::File {
        what,
        path: path.clone(),
        source,
    })
}

/// 429 and the 5xx that mean "try again later".
fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` in seconds, capped; an HTTP date is left to the backoff schedule.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// A transport failure without the URL (the path is in the error already).
fn transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "transport error"
    };
    let mut out = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    // Under TLS 1.3 a refused client certificate often surfaces only as a dropped
    // connection, without the alert: say where to look.
    if e.url().is_some_and(|u| u.scheme() == "https") && !e.is_timeout() {
        out.push_str(
            " (over HTTPS: check the source's ca_cert, and client_cert/client_key if the \
             register requires mutual TLS)",
        );
    }
    out
}

/// `: code: message` from an SS 12000 error body, if it has one (bounded, no raw HTML).
async fn error_detail(resp: reqwest::Response) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(body) = resp.bytes().await else {
        return String::new();
    };
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(ErrorBody { code, message }) => {
            let parts: Vec<String> = [code, message]
                .into_iter()
                .flatten()
                .map(|s| s.chars().take(300).collect())
                .collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!(": {}", parts.join(": "))
            }
        }
        Err(_) => String::new(),
    }
}

mod token;
