//! From a snapshot (or change set) and the directory's current state to a plan: the rows to
//! write, the rows to remove, and who becomes active or inactive. Pure: everything it needs
//! from the database arrives in [`Existing`], so the plan is computed (and checked by the
//! guard) before anything is written.
//!
//! Each register entity owns its rows: a person owns its enrolments and the guardianships
//! its `responsibles` name; a group owns its memberships; a duty owns its assignments. A
//! changed entity replaces its rows wholesale, so applying the same plan twice is harmless.

use super::ss12000::types::{self as ss, ChangeSet, Snapshot};
use crate::config::DirectoryConfig;
use crate::directory::CivicNo;
use crate::directory::ident;
use crate::directory::roles::{self, Dates, format_date};
use crate::storage::persons::StoredAssignment;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

mod build;
mod full;
mod guard;
mod incremental;
#[cfg(test)]
mod tests;

pub use crate::storage::sync::rows::{
    DutyRow, EnrolmentRow, Existing, ExistingOrg, ExistingPerson, GroupRow, NewIdentity, OrgRow,
    PersonRow, Status, StatusChange,
};
pub use full::full;
pub use guard::{Limits, active_count_cap, guard};
pub use incremental::{incremental, incremental_person_refs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Full,
    Incremental,
    /// Changes a push source (EGIL SCIM) sent: planned like an incremental run.
    Push,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Full => "full",
            RunKind::Incremental => "incremental",
            RunKind::Push => "push",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub organisations_changed: u64,
    pub organisations_removed: u64,
    pub persons_created: u64,
    pub persons_updated: u64,
    pub persons_unchanged: u64,
    pub deactivations: u64,
    /// People whose civic number the register changed (an account re-bound to another
    /// person): counted by the guard like deactivations.
    #[serde(default)]
    pub civic_changes: u64,
    pub reactivations: u64,
    pub groups_changed: u64,
    pub groups_removed: u64,
    pub duties_changed: u64,
    pub duties_removed: u64,
    /// Active people of this source before the run (the guard's denominator). An
    /// incremental run counts them only as far as the guard needs (`active_count_cap`):
    /// 0 when it deactivates nobody.
    pub active_before: u64,
    /// Deactivated longer than `sync.retention_days` and deleted (tombstones kept).
    pub purged: u64,
    /// References that did not resolve (a membership of an unknown person …), by kind.
    pub unresolved: BTreeMap<String, u64>,
}

/// One line of the diff kept in the run record (the first few hundred changes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiffEntry {
    pub op: String,
    pub entity: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub source: String,
    pub kind: RunKind,
    pub today: String,
    pub organisations: Vec<OrgRow>,
    pub persons: Vec<PersonRow>,
    pub groups: Vec<GroupRow>,
    pub duties: Vec<DutyRow>,
    pub remove_organisations: Vec<String>,
    pub remove_groups: Vec<String>,
    pub remove_duties: Vec<String>,
    pub status: Vec<StatusChange>,
    pub counts: Counts,
    pub diff: Vec<DiffEntry>,
    /// School units that had roles from this source and would have none after the plan.
    pub emptied_units: Vec<String>,
    /// People whose civic number changes: their sessions and refresh tokens end with the
    /// change, and each change is audited (without the number).
    #[serde(default)]
    pub rebound: Vec<String>,
}

impl Plan {
    /// Changes nothing.
    pub fn is_empty(&self) -> bool {
        self.organisations.is_empty()
            && self.persons.is_empty()
            && self.groups.is_empty()
            && self.duties.is_empty()
            && self.remove_organisations.is_empty()
            && self.remove_groups.is_empty()
            && self.remove_duties.is_empty()
            && self.status.is_empty()
    }
}

impl Counts {
    /// Adds what another plan of the same source did (a push source's runs gather the
    /// changes of their time window); the active count is the larger.
    pub fn add(&mut self, o: &Counts) {
        self.organisations_changed += o.organisations_changed;
        self.organisations_removed += o.organisations_removed;
        self.persons_created += o.persons_created;
        self.persons_updated += o.persons_updated;
        self.persons_unchanged += o.persons_unchanged;
        self.deactivations += o.deactivations;
        self.civic_changes += o.civic_changes;
        self.reactivations += o.reactivations;
        self.groups_changed += o.groups_changed;
        self.groups_removed += o.groups_removed;
        self.duties_changed += o.duties_changed;
        self.duties_removed += o.duties_removed;
        self.active_before = self.active_before.max(o.active_before);
        self.purged += o.purged;
        for (k, v) in &o.unresolved {
            *self.unresolved.entry(k.clone()).or_default() += v;
        }
    }
}

pub struct Settings<'a> {
    pub source: &'a str,
    pub directory: &'a DirectoryConfig,
    pub eppn_scope: &'a str,
    pub username_context: Option<&'a str>,
    pub today: NaiveDate,
}

pub(super) const DIFF_SAMPLES: usize = 500;

fn digest_of<T: Serialize>(v: &T) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in &d.as_ref()[..16] {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

fn date(d: Option<NaiveDate>) -> Option<String> {
    d.map(format_date)
}

fn group_kind(group_type: &str) -> &'static str {
    match group_type {
        "Klass" => "class",
        "Undervisning" => "teaching",
        "Mentor" => "mentor",
        "Provgrupp" => "exam",
        "Schema" => "schedule",
        "Avdelning" => "department",
        "Personalgrupp" => "staff",
        _ => "other",
    }
}

/// People whose `personStatus` says they are gone from the population register.
fn gone(p: &ss::Person) -> bool {
    matches!(p.person_status.as_deref(), Some("Avliden" | "Utvandrad"))
}

/// The address released as `email`: the school's, else a work address; never a private one.
fn school_email(emails: &[ss::Email]) -> Option<String> {
    ["Skola elev", "Skola personal", "Arbete övrigt"]
        .iter()
        .find_map(|kind| emails.iter().find(|e| e.kind == *kind))
        .map(|e| e.value.clone())
}

/// The candidates a plan may give to new people, so the caller can ask the database which
/// are taken before planning: register usernames and generated identifiers of people not
/// yet known.
pub fn identity_candidates(
    people: &[ss::Person],
    existing: &Existing,
    s: &Settings,
) -> Vec<String> {
    let d = s.directory;
    let (Ok(u), Ok(e)) = (
        ident::Pattern::parse(&d.username_pattern),
        ident::Pattern::parse(&d.eppn_pattern),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in people
        .iter()
        .filter(|p| !existing.persons.contains_key(&p.id))
    {
        let id = ident::person_id(s.source, &p.id);
        if let Some(ctx) = s.username_context {
            out.extend(
                p.external_identifiers
                    .iter()
                    .filter(|x| x.context == ctx)
                    .filter_map(|x| ident::usable_username(&x.value)),
            );
        }
        out.extend(p.eppns.iter().filter_map(|e| ident::usable_eppn(e)));
        out.push(u.render(&id, 0));
        out.push(format!("{}@{}", e.render(&id, 0), s.eppn_scope));
    }
    out
}

fn is_current(d: &Dates, today: NaiveDate) -> bool {
    d.start.is_none_or(|s| s <= today) && d.end.is_none_or(|e| today <= e)
}

fn parse(d: &Option<String>) -> Option<NaiveDate> {
    d.as_deref().and_then(roles::parse_date)
}

fn count_status(c: &mut Counts, was: bool, now: bool) {
    match (was, now) {
        (true, false) => c.deactivations += 1,
        (false, true) => c.reactivations += 1,
        _ => {}
    }
}

fn status_reason(was: bool, now: bool) -> &'static str {
    match (was, now) {
        (true, false) => "deactivate",
        (false, true) => "reactivate",
        _ => "window",
    }
}

fn empty_plan(s: &Settings, kind: RunKind, existing: &Existing) -> Plan {
    Plan {
        source: s.source.to_string(),
        kind,
        today: format_date(s.today),
        organisations: Vec::new(),
        persons: Vec::new(),
        groups: Vec::new(),
        duties: Vec::new(),
        remove_organisations: Vec::new(),
        remove_groups: Vec::new(),
        remove_duties: Vec::new(),
        status: Vec::new(),
        counts: Counts {
            active_before: existing.active,
            ..Default::default()
        },
        diff: Vec::new(),
        emptied_units: Vec::new(),
        rebound: Vec::new(),
    }
}
