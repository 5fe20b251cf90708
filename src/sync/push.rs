//! What a push source sends (the EGIL SCIM server in `crate::scim`): each change is checked
//! against what the source pushed before, then planned, guarded and applied like a sync
//! run's, and the resource stored as sent.
//!
//! One worker per source takes the changes in arrival order, in batches of what arrived
//! while it worked (a group commit: concurrent requests share one plan and one apply). A
//! batch is cut where puts turn to deletes, so the guard judges deletes by themselves. A
//! batch is checked and applied under the source's lease, so instances receiving the same
//! source's pushes take turns and each checks against what the other stored. Each
//! batch's changes join the source's run of the current window (`sync.push_run_window`),
//! so `sync runs` stays readable; a batch the guard stops gets a held run of its own, and a
//! resource whose delete is held answers "held" until an administrator decides.

use super::egil::{self, Kind, Resource};
use super::lease::{HEARTBEAT, Lease};
use super::plan::{self, Counts, DiffEntry, RunKind, Settings};
use super::run::{Runner, SyncError, apply};
use super::ss12000::types::{ChangeSet, ParseReport};
use super::{Env, held};
use crate::config::Config;
use crate::storage::scim::{self as scim_store, Stored, Write};
use crate::storage::{self, Db, sync as store};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// One change a client asked for.
pub enum Change {
    /// Create (POST, `create`) or replace (PUT) a resource; `if_match` is the version the
    /// client last saw (`If-Match`).
    Put {
        resource: Box<Resource>,
        create: bool,
        if_match: Option<i64>,
    },
    Delete {
        kind: Kind,
        id: String,
        if_match: Option<i64>,
    },
}

impl Change {
    fn is_delete(&self) -> bool {
        matches!(self, Change::Delete { .. })
    }
}

/// What a change did.
#[derive(Debug)]
pub enum Done {
    /// The resource as stored now.
    Stored(Stored),
    Deleted,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    NotFound(String),
    /// The resource belongs to another source.
    #[error("{0}")]
    OtherSource(String),
    /// A uniqueness conflict.
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` names another version.
    #[error("{0}")]
    Precondition(String),
    /// A reference to a resource the source has not pushed.
    #[error("{0}")]
    BadReference(String),
    /// The guard holds the change for an administrator (`sync approve RUN`).
    #[error(
        "the change is held for an administrator in sync run {run}: {reason}; it takes \
         effect when the run is approved (portvakt sync approve {run})"
    )]
    Held { run: i64, reason: String },
    /// An administrator rejected this very change.
    #[error(
        "an administrator rejected this change in sync run {0}; it is not applied again \
         while the source sends the same"
    )]
    Rejected(i64),
    /// Another instance is applying this source's changes; try again shortly.
    #[error("another instance is applying this source's changes; try again shortly")]
    Busy,
    #[error("the push could not be applied: {0}")]
    Failed(String),
}

/// At most this many changes share a plan: what concurrent clients have queued, bounded.
const MAX_BATCH: usize = 256;

/// The push workers, one per source, started on the first change.
#[derive(Clone)]
pub struct Pushes {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    config: Arc<Config>,
    clock: crate::clock::Clock,
    keys: crate::keys::KeyStore,
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Pending>>>,
}

struct Pending {
    change: Change,
    reply: oneshot::Sender<Result<Done, PushError>>,
}

impl Pushes {
    pub fn new(
        db: Db,
        config: Arc<Config>,
        clock: crate::clock::Clock,
        keys: crate::keys::KeyStore,
    ) -> Self {
        Pushes {
            inner: Arc::new(Inner {
                db,
                config,
                clock,
                keys,
                queues: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Applies one change of `source` (checked, planned, guarded, applied, stored), after
    /// those that came before it.
    pub async fn submit(&self, source: &str, change: Change) -> Result<Done, PushError> {
        let (reply, answer) = oneshot::channel();
        let mut pending = Pending { change, reply };
        // A worker that stopped (a panic) is replaced by the next change.
        for _ in 0..2 {
            match self.sender(source).send(pending) {
                Ok(()) => {
                    return answer
                        .await
                        .map_err(|_| PushError::Failed("the push worker stopped".into()))?;
                }
                Err(mpsc::error::SendError(back)) => {
                    pending = back;
                    self.inner.lock_queues().remove(source);
                }
            }
        }
        Err(PushError::Failed("the push worker cannot start".into()))
    }

    fn sender(&self, source: &str) -> mpsc::UnboundedSender<Pending> {
        let mut queues = self.inner.lock_queues();
        if let Some(tx) = queues.get(source).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        queues.insert(source.to_string(), tx.clone());
        tokio::spawn(work(self.inner.clone(), source.to_string(), rx));
        tx
    }
}

impl Inner {
    fn lock_queues(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Pending>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn env(&self) -> Env<'_> {
        Env {
            db: &self.db,
            config: &self.config,
            clock: &self.clock,
            kek: self.keys.kek(),
        }
    }
}

async fn work(inner: Arc<Inner>, source: String, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let mut rest = batch.into_iter().peekable();
        while let Some(p) = rest.next() {
            let deleting = p.change.is_delete();
            let mut segment = vec![p];
            while let Some(n) = rest.next_if(|n| n.change.is_delete() == deleting) {
                segment.push(n);
            }
            Segment::new(&inner, &source).run(segment).await;
        }
    }
}

/// A resource as the segment sees it: stored, or as a change of this segment left it
/// (`resource` None: deleted).
#[derive(Clone)]
struct Entry {
    resource: Option<Resource>,
    version: i64,
    created: i64,
    held_run: Option<i64>,
}

/// What a change of the segment was accepted as.
struct Accepted {
    kind: Kind,
    id: String,
    /// The resource before the change (None: created).
    old: Option<Resource>,
    reply: oneshot::Sender<Result<Done, PushError>>,
}

/// Consecutive puts, or consecutive deletes, of one batch.
struct Segment<'a> {
    inner: &'a Inner,
    source: &'a str,
    now: i64,
    /// What the segment has looked up or changed, by (kind, id).
    seen: HashMap<(Kind, String), Option<Entry>>,
}

impl<'a> Segment<'a> {
    fn new(inner: &'a Inner, source: &'a str) -> Self {
        Segment {
            inner,
            source,
            now: inner.clock.now(),
            seen: HashMap::new(),
        }
    }

    /// Checks, plans, applies and stores the segment under the source's lease, so the
    /// checks see what another instance pushed for the source before it.
    async fn run(self, changes: Vec<Pending>) {
        let (inner, source) = (self.inner, self.source);
        let env = inner.env();
        // Another instance applying this source's changes holds the lease for a moment.
        let mut tries = 0;
        let lease = loop {
            match Lease::take(env.db, env.clock, source, HEARTBEAT).await {
                Ok(lease) => break lease,
                Err(SyncError::Busy(_)) if tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => {
                    for p in changes {
                        let _ = p.reply.send(Err(match &e {
                            SyncError::Busy(_) => PushError::Busy,
                            e => failed(e),
                        }));
                    }
                    return;
                }
            }
        };
        // A lost lease drops the work at its next await: its clients' replies are dropped
        // with it, and they hear a failure and send again.
        let _ = lease
            .guard(self.work(changes), std::future::pending())
            .await;
        lease.release().await;
    }

    async fn work(mut self, changes: Vec<Pending>) {
        let deleting = changes.first().is_some_and(|p| p.change.is_delete());
        let mut accepted = Vec::new();
        for Pending { change, reply } in changes {
            match self.check(change).await {
                Ok((kind, id, old)) => accepted.push(Accepted {
                    kind,
                    id,
                    old,
                    reply,
                }),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        if accepted.is_empty() {
            return;
        }
        let outcome = match self.changes(&accepted).await {
            Ok(changes) => self.push_run(changes).await,
            Err(e) => Err(e),
        };
        let answer = match outcome {
            Ok(None) => self.store(&accepted).await,
            Ok(Some(run)) if deleting => {
                let ids: Vec<(Kind, &str)> =
                    accepted.iter().map(|a| (a.kind, a.id.as_str())).collect();
                self.hold(&ids, run.0).await.map(|()| Some(run))
            }
            Ok(Some(run)) => Ok(Some(run)),
            Err(e) => Err(e),
        };
        match answer {
            Ok(None) => {
                for a in accepted {
                    let done = match self.entry_now(a.kind, &a.id) {
                        Some(stored) => Done::Stored(stored),
                        None => Done::Deleted,
                    };
                    let _ = a.reply.send(Ok(done));
                }
            }
            Ok(Some((run, reason))) => {
                for a in accepted {
                    let _ = a.reply.send(Err(PushError::Held {
                        run,
                        reason: reason.clone(),
                    }));
                }
            }
            Err(e) => {
                let message = e.to_string();
                let again = matches!(e, PushError::Busy);
                for a in accepted {
                    let _ = a.reply.send(Err(match &e {
                        PushError::Rejected(run) => PushError::Rejected(*run),
                        _ if again => PushError::Busy,
                        _ => PushError::Failed(message.clone()),
                    }));
                }
            }
        }
    }

    /// The resource as stored after the segment applied.
    fn entry_now(&self, kind: Kind, id: &str) -> Option<Stored> {
        let e = self.seen.get(&(kind, id.to_string()))?.as_ref()?;
        let r = e.resource.as_ref()?;
        Some(Stored {
            id: r.id.clone(),
            version: e.version,
            body: r.body.clone(),
            created_at: e.created,
            modified_at: self.now,
            held_run: None,
        })
    }

    /// The resource of (kind, id) as the segment sees it.
    async fn entry(&mut self, kind: Kind, id: &str) -> Result<Option<Entry>, PushError> {
        let key = (kind, id.to_string());
        if let Some(e) = self.seen.get(&key) {
            return Ok(e.clone());
        }
        let stored = scim_store::get(&self.inner.db, self.source, kind.name(), id)
            .await
            .map_err(failed)?;
        let entry = match stored {
            Some(s) => Some(Entry {
                resource: Some(
                    egil::read(kind, serde_json::Value::Object(s.body), Some(&s.id))
                        .map_err(|e| PushError::Failed(format!("a stored {kind:?} {id}: {e:?}")))?,
                ),
                version: s.version,
                created: s.created_at,
                held_run: s.held_run,
            }),
            None => None,
        };
        self.seen.insert(key, entry.clone());
        Ok(entry)
    }

    async fn exists(&mut self, kind: Kind, id: &str) -> Result<bool, PushError> {
        Ok(self
            .entry(kind, id)
            .await?
            .is_some_and(|e| e.resource.is_some()))
    }

    /// Refused when missing: 403 if another source has it, else 404.
    async fn missing(&self, kind: Kind, id: &str) -> PushError {
        match scim_store::of_another_source(&self.inner.db, self.source, kind.name(), id).await {
            Ok(true) => PushError::OtherSource(format!(
                "{}/{id} belongs to another source; a source can change only what it created",
                kind.endpoint()
            )),
            Ok(false) => PushError::NotFound(format!("no {}/{id}", kind.endpoint())),
            Err(e) => failed(e),
        }
    }

    /// Checks a change against what the source has (with this segment's earlier changes)
    /// and records it in `seen`.
    async fn check(
        &mut self,
        change: Change,
    ) -> Result<(Kind, String, Option<Resource>), PushError> {
        match change {
            Change::Put {
                mut resource,
                create,
                if_match,
            } => {
                let (kind, id) = (resource.kind, resource.id.clone());
                let old = self
                    .entry(kind, &id)
                    .await?
                    .filter(|e| e.resource.is_some());
                match (&old, create) {
                    (Some(_), true) => {
                        return Err(PushError::Conflict(format!(
                            "{}/{id} exists; replace it with PUT",
                            kind.endpoint()
                        )));
                    }
                    (None, false) => return Err(self.missing(kind, &id).await),
                    (None, true) => {
                        if let PushError::OtherSource(m) = self.missing(kind, &id).await {
                            return Err(PushError::OtherSource(m));
                        }
                    }
                    (Some(_), false) => {}
                }
                if let Some(e) = &old {
                    precondition(kind, &id, e, if_match)?;
                    if let Some(run) = e.held_run {
                        return Err(held_delete(run));
                    }
                }
                self.resolve_enrolments(&mut resource).await?;
                self.check_unique(&resource).await?;
                for r in resource.refs() {
                    let itself = r.kind == kind && r.id == id;
                    if !itself && !self.exists(r.kind, &r.id).await? {
                        return Err(PushError::BadReference(format!(
                            "{}/{} does not exist (push what a resource refers to first)",
                            r.kind.endpoint(),
                            r.id
                        )));
                    }
                }
                let entry = Entry {
                    resource: Some(*resource),
                    version: old.as_ref().map_or(1, |e| e.version + 1),
                    created: old.as_ref().map_or(self.now, |e| e.created),
                    held_run: None,
                };
                self.seen.insert((kind, id.clone()), Some(entry));
                Ok((kind, id, old.and_then(|e| e.resource)))
            }
            Change::Delete { kind, id, if_match } => {
                let Some(old) = self
                    .entry(kind, &id)
                    .await?
                    .filter(|e| e.resource.is_some())
                else {
                    return Err(self.missing(kind, &id).await);
                };
                precondition(kind, &id, &old, if_match)?;
                if let Some(run) = old.held_run {
                    return Err(held_delete(run));
                }
                let gone = Entry {
                    resource: None,
                    ..old.clone()
                };
                self.seen.insert((kind, id.clone()), Some(gone));
                Ok((kind, id, old.resource))
            }
        }
    }

    /// An enrolment naming a school unit code instead of an id gets the unit's id.
    async fn resolve_enrolments(&mut self, r: &mut Resource) -> Result<(), PushError> {
        let egil::Fact::User { enrolments, .. } = &r.fact else {
            return Ok(());
        };
        let mut by_code = HashMap::new();
        for e in enrolments {
            if self.exists(Kind::SchoolUnit, &e.unit).await? {
                continue;
            }
            if let Some(id) = self.unit_by_code(&e.unit).await? {
                by_code.insert(e.unit.clone(), id);
            }
        }
        r.resolve_enrolments(|v| by_code.get(v).cloned());
        Ok(())
    }

    async fn unit_by_code(&mut self, code: &str) -> Result<Option<String>, PushError> {
        let here = self.seen.iter().find_map(|((k, id), e)| {
            let r = e.as_ref()?.resource.as_ref()?;
            (*k == Kind::SchoolUnit && r.unique_key().as_deref() == Some(code)).then(|| id.clone())
        });
        if here.is_some() {
            return Ok(here);
        }
        let stored = scim_store::by_unique_key(&self.inner.db, self.source, "SchoolUnit", code)
            .await
            .map_err(failed)?;
        match stored {
            // Changed in this segment to another code: not this one any more.
            Some(id) if self.exists(Kind::SchoolUnit, &id).await? => Ok(Some(id)),
            _ => Ok(None),
        }
    }

    /// A User's userName and a SchoolUnit's code are unique in the source; a userName is
    /// also refused when it is another person's username or eppn.
    async fn check_unique(&mut self, r: &Resource) -> Result<(), PushError> {
        let Some(key) = r.unique_key() else {
            return Ok(());
        };
        let what = if r.kind == Kind::User {
            "userName"
        } else {
            "schoolUnitCode"
        };
        let conflict = |other: &str| {
            PushError::Conflict(format!(
                "{what} {key} is taken by {}/{other}",
                r.kind.endpoint()
            ))
        };
        for ((k, id), e) in &self.seen {
            let Some(other) = e.as_ref().and_then(|e| e.resource.as_ref()) else {
                continue;
            };
            if *k == r.kind && *id != r.id && other.unique_key().as_deref() == Some(&key) {
                return Err(conflict(id));
            }
        }
        let stored = scim_store::by_unique_key(&self.inner.db, self.source, r.kind.name(), &key)
            .await
            .map_err(failed)?;
        if let Some(other) = stored.filter(|o| *o != r.id) {
            // Unless this segment changed the other one's key already.
            let still = match self.entry(r.kind, &other).await? {
                Some(Entry {
                    resource: Some(o), ..
                }) => o.unique_key().as_deref() == Some(&key),
                _ => false,
            };
            if still {
                return Err(conflict(&other));
            }
        }
        if let egil::Fact::User { user_name, .. } = &r.fact {
            let mine = crate::directory::ident::person_id(self.source, &r.id);
            let person = storage::persons::by_login_name(&self.inner.db, user_name)
                .await
                .map_err(failed)?;
            if person.is_some_and(|p| p.id != mine) {
                return Err(PushError::Conflict(format!(
                    "userName {user_name} is another person's username or eppn"
                )));
            }
        }
        Ok(())
    }

    /// The SS 12000 changes the accepted changes make.
    async fn changes(&mut self, accepted: &[Accepted]) -> Result<ChangeSet, PushError> {
        let now = self.now;
        let mut set = ChangeSet::default();
        // Employments whose duty must be written again (their own change, or an Activity
        // naming them changed).
        let mut employments: Vec<String> = Vec::new();
        for a in accepted {
            let current = self
                .seen
                .get(&(a.kind, a.id.clone()))
                .and_then(|e| e.as_ref())
                .and_then(|e| e.resource.clone());
            match (&current, a.kind) {
                (Some(r), Kind::Organisation | Kind::SchoolUnitGroup | Kind::SchoolUnit) => {
                    set.changed.organisations.extend(egil::organisation(r, now));
                }
                (Some(r), Kind::User) => set.changed.persons.extend(egil::person(r, now)),
                (Some(r), Kind::StudentGroup) => set.changed.groups.extend(egil::group(r, now)),
                (Some(_), Kind::Employment) => employments.push(a.id.clone()),
                (None, Kind::Organisation | Kind::SchoolUnitGroup | Kind::SchoolUnit) => {
                    set.deleted.organisations.push(a.id.clone());
                }
                (None, Kind::User) => set.deleted.persons.push(a.id.clone()),
                (None, Kind::StudentGroup) => set.deleted.groups.push(a.id.clone()),
                (None, Kind::Employment) => set.deleted.duties.push(a.id.clone()),
                (_, Kind::Activity) => {
                    for r in a.old.iter().chain(current.iter()) {
                        if let egil::Fact::Activity { teachers, .. } = &r.fact {
                            employments.extend(teachers.iter().cloned());
                        }
                    }
                }
            }
        }
        employments.sort();
        employments.dedup();
        for e in employments {
            let Some(Entry {
                resource: Some(employment),
                ..
            }) = self.entry(Kind::Employment, &e).await?
            else {
                continue;
            };
            let activities = self.activities_of(&e).await?;
            set.changed
                .duties
                .extend(egil::duty(&employment, &activities, now));
        }
        Ok(set)
    }

    /// The Activities naming Employment `id` as a teacher, as the segment sees them.
    async fn activities_of(&mut self, id: &str) -> Result<Vec<Resource>, PushError> {
        let mut ids =
            scim_store::referrers(&self.inner.db, self.source, "Activity", "Employment", id)
                .await
                .map_err(failed)?;
        for ((k, a), e) in &self.seen {
            if *k == Kind::Activity
                && let Some(egil::Fact::Activity { teachers, .. }) = e
                    .as_ref()
                    .and_then(|e| e.resource.as_ref())
                    .map(|r| &r.fact)
                && teachers.iter().any(|t| t == id)
            {
                ids.push(a.clone());
            }
        }
        ids.sort();
        ids.dedup();
        let mut out = Vec::new();
        for a in ids {
            if let Some(Entry {
                resource: Some(r), ..
            }) = self.entry(Kind::Activity, &a).await?
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Plans, guards and applies `changes` (under the lease `run` holds): None when
    /// applied, or the held run and why.
    async fn push_run(&self, changes: ChangeSet) -> Result<Option<(i64, String)>, PushError> {
        let runner = Runner::new(self.inner.env(), self.source);
        let started = std::time::Instant::now();
        let result = push_leased(&runner, changes, self.now).await;
        // Each batch is a run in the metrics (the run records gather a window's).
        let (label, changes) = match &result {
            Ok((Some(_), _)) => ("held", Vec::new()),
            Ok((None, c)) => (
                "applied",
                vec![
                    ("created", c.persons_created),
                    ("updated", c.persons_updated),
                    ("deactivated", c.deactivations),
                    ("reactivated", c.reactivations),
                ],
            ),
            Err(PushError::Rejected(_)) => ("skipped", Vec::new()),
            Err(_) => ("failed", Vec::new()),
        };
        crate::metrics::sync_run(
            self.source,
            label,
            started.elapsed().as_secs_f64(),
            &changes,
        );
        result.map(|(held, _)| held)
    }

    /// Stores the accepted changes' resources (after their directory changes applied).
    async fn store(&self, accepted: &[Accepted]) -> Result<Option<(i64, String)>, PushError> {
        let current: Vec<(Kind, &str, Option<&Resource>)> = accepted
            .iter()
            .map(|a| {
                let r = self
                    .seen
                    .get(&(a.kind, a.id.clone()))
                    .and_then(|e| e.as_ref())
                    .and_then(|e| e.resource.as_ref());
                (a.kind, a.id.as_str(), r)
            })
            .collect();
        let keys: Vec<Option<String>> = current
            .iter()
            .map(|(_, _, r)| r.and_then(Resource::unique_key))
            .collect();
        let refs: Vec<Vec<egil::Ref>> = current
            .iter()
            .map(|(_, _, r)| r.map(Resource::refs).unwrap_or_default())
            .collect();
        let writes: Vec<Write> = current
            .iter()
            .zip(keys.iter().zip(&refs))
            .map(|((kind, id, r), (key, refs))| match r {
                Some(r) => Write::Put {
                    kind: kind.name(),
                    id,
                    unique_key: key.as_deref(),
                    body: &r.body,
                    refs: refs
                        .iter()
                        .map(|x| (x.kind.name(), x.id.as_str()))
                        .collect(),
                },
                None => Write::Delete {
                    kind: kind.name(),
                    id,
                },
            })
            .collect();
        scim_store::write(&self.inner.db, self.source, &writes, self.now)
            .await
            .map_err(failed)?;
        Ok(None)
    }

    async fn hold(&self, ids: &[(Kind, &str)], run: i64) -> Result<(), PushError> {
        let mut by_kind: BTreeMap<Kind, Vec<&str>> = BTreeMap::new();
        for (k, id) in ids {
            by_kind.entry(*k).or_default().push(id);
        }
        for (k, list) in by_kind {
            scim_store::hold(&self.inner.db, self.source, k.name(), &list, run)
                .await
                .map_err(failed)?;
        }
        Ok(())
    }
}

fn failed(e: impl std::fmt::Display) -> PushError {
    PushError::Failed(e.to_string())
}

fn held_delete(run: i64) -> PushError {
    PushError::Held {
        run,
        reason: "its delete waits for an administrator".into(),
    }
}

fn precondition(kind: Kind, id: &str, e: &Entry, if_match: Option<i64>) -> Result<(), PushError> {
    match if_match {
        Some(v) if v != e.version => Err(PushError::Precondition(format!(
            "{}/{id} is at version {}, not {v}",
            kind.endpoint(),
            e.version
        ))),
        _ => Ok(()),
    }
}

/// The plan of a push (under the source's lease): held (a run of its own), or applied and
/// recorded in the window's run.
async fn push_leased(
    runner: &Runner<'_>,
    changes: ChangeSet,
    now: i64,
) -> Result<(Option<(i64, String)>, Counts), PushError> {
    let (db, config, source) = (runner.db, runner.config, runner.source);
    let today = crate::directory::roles::day_of(now);
    let today_s = crate::directory::roles::format_date(today);
    let scope = config.saml_scope();
    let settings = Settings {
        source,
        directory: &config.directory,
        eppn_scope: &scope,
        username_context: None,
        today,
    };
    let mut plan = runner
        .plan_changes(&changes, &settings, &today_s)
        .await
        .map_err(failed)?;
    plan.kind = RunKind::Push;
    let recent = runner.recently_lost(now).await.map_err(failed)?;
    let share = config.sync.max_deactivation_share;
    let cap = plan::active_count_cap(&plan, share, recent);
    plan.counts.active_before = store::active_count_upto(db, source, cap)
        .await
        .map_err(failed)?;
    if let Some(reason) = plan::guard(&plan, recent, &plan::Limits::of(&config.sync)) {
        let hash = held::plan_hash(&plan);
        if let Some(run) = store::rejected_with_hash(db, source, &hash)
            .await
            .map_err(failed)?
        {
            return Err(PushError::Rejected(run));
        }
        // A client sending a held change again waits for the same run.
        if let Some(run) = store::held_with_hash(db, source, &hash)
            .await
            .map_err(failed)?
        {
            return Ok((Some((run, reason)), plan.counts));
        }
        let run = store::start_run(db, source, RunKind::Push.as_str(), now)
            .await
            .map_err(failed)?;
        let sealed = held::seal(runner.kek, run, &plan, now).map_err(failed)?;
        runner
            .finish(
                run,
                "held",
                &plan.counts,
                &ParseReport::default(),
                &plan.diff,
                Some(&reason),
                Some((&sealed, &hash)),
                None,
            )
            .await
            .map_err(failed)?;
        storage::records::audit(
            db,
            "sync.held",
            source,
            &format!("run {run}: {reason}"),
            now,
        )
        .await
        .map_err(failed)?;
        return Ok((Some((run, reason)), plan.counts));
    }
    if plan.is_empty() {
        return Ok((None, plan.counts));
    }
    if let Err(e) = apply(db, config, &mut plan, &|_| {}, now).await {
        // What was written stays (each write is idempotent); the client was not told
        // yes, so it sends the change again.
        let reason = format!("applying stopped: {}", crate::error_chain(&e));
        if let Ok(run) = store::start_run(db, source, RunKind::Push.as_str(), now).await {
            let _ = runner
                .finish(
                    run,
                    "failed",
                    &plan.counts,
                    &ParseReport::default(),
                    &plan.diff,
                    Some(&reason),
                    None,
                    None,
                )
                .await;
        }
        return Err(PushError::Failed(reason));
    }
    record(runner, &plan, now).await.map_err(failed)?;
    Ok((None, plan.counts))
}

/// Adds an applied push plan to the source's run of the current window (or starts one).
async fn record(runner: &Runner<'_>, plan: &plan::Plan, now: i64) -> Result<(), SyncError> {
    let (db, source) = (runner.db, runner.source);
    let window = i64::try_from(runner.config.sync.push_run_window).unwrap_or(i64::MAX);
    let (run, counts, diff) =
        match store::open_push_run(db, source, now.saturating_sub(window)).await? {
            Some((run, counts, diff)) => {
                let mut c: Counts = serde_json::from_value(counts).unwrap_or_default();
                c.add(&plan.counts);
                let mut d: Vec<DiffEntry> = serde_json::from_value(diff).unwrap_or_default();
                let room = plan::DIFF_SAMPLES.saturating_sub(d.len());
                d.extend(plan.diff.iter().take(room).cloned());
                (run, c, d)
            }
            None => {
                let run = store::start_run(db, source, RunKind::Push.as_str(), now).await?;
                (run, plan.counts.clone(), plan.diff.clone())
            }
        };
    runner
        .finish(
            run,
            "applied",
            &counts,
            &ParseReport::default(),
            &diff,
            None,
            None,
            None,
        )
        .await
}
