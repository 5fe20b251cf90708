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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Full,
    Incremental,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Full => "full",
            RunKind::Incremental => "incremental",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrgRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub school_unit_code: Option<String>,
    pub organisation_number: Option<String>,
    /// For a school unit: the name of its huvudman.
    pub huvudman: Option<String>,
    pub school_types: Vec<String>,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnrolmentRow {
    pub unit: String,
    pub school_type: Option<String>,
    pub school_year: Option<i32>,
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PersonRow {
    pub id: String,
    pub external_id: String,
    pub given_name: String,
    pub family_name: String,
    pub civic_no: Option<String>,
    pub email: Option<String>,
    pub emails: Vec<(String, String)>,
    pub security_marking: Option<String>,
    pub protected_identity: bool,
    pub enrolments: Vec<EnrolmentRow>,
    /// (guardian's internal id, relation type), only configured relations.
    pub guardians: Vec<(String, String)>,
    pub hash: String,
    /// Set for a person new to the directory: the identifiers it is created with.
    pub create: Option<NewIdentity>,
    pub status: Status,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NewIdentity {
    pub username: String,
    pub eppn: String,
}

/// A person's activity: active or not, and the window it was computed from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub active: bool,
    pub from: Option<String>,
    pub until: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupRow {
    pub id: String,
    pub unit: String,
    pub name: String,
    pub kind: String,
    pub school_type: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    /// (person's internal id, start, end).
    pub members: Vec<(String, Option<String>, Option<String>)>,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DutyRow {
    pub id: String,
    pub person_id: String,
    pub unit: String,
    pub duty_role: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub assignments: Vec<StoredAssignment>,
    pub hash: String,
}

/// A status change of a person whose register record did not change (or who left it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusChange {
    pub person_id: String,
    pub status: Status,
    /// Why, for the run record: "left the register", "no current role", "back", "window".
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub organisations_changed: u64,
    pub organisations_removed: u64,
    pub persons_created: u64,
    pub persons_updated: u64,
    pub persons_unchanged: u64,
    pub deactivations: u64,
    pub reactivations: u64,
    pub groups_changed: u64,
    pub groups_removed: u64,
    pub duties_changed: u64,
    pub duties_removed: u64,
    /// Active people of this source before the run (the guard's denominator).
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

/// What the directory holds for one person of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingPerson {
    pub id: String,
    pub hash: Option<String>,
    pub status: Status,
}

/// An organisation as stored, for resolving references an incremental run does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingOrg {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub school_unit_code: Option<String>,
    pub hash: String,
}

/// The part of the directory a plan is computed against. For a full run it holds every
/// row of the source; for an incremental run, the rows the change set touches.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    /// By register id.
    pub persons: HashMap<String, ExistingPerson>,
    pub organisations: HashMap<String, ExistingOrg>,
    pub groups: HashMap<String, String>,
    pub duties: HashMap<String, String>,
    /// Per school unit: how many current roles of active people of this source it has.
    pub unit_roles: HashMap<String, u64>,
    pub active: u64,
    /// Usernames and eppns taken (by anyone, or by a tombstone), among the candidates.
    pub taken: HashSet<String>,
    /// Incremental runs: the role dates of affected people as stored (own enrolments and
    /// duties by internal id), children by guardian id, and children's enrolment dates.
    pub own_dates: HashMap<String, Vec<Dates>>,
    pub duty_dates: HashMap<String, Vec<(String, Dates)>>,
    pub children: HashMap<String, Vec<String>>,
    /// (guardian internal id) per child internal id, as stored.
    pub guardians_of: HashMap<String, Vec<String>>,
    /// Incremental runs: the school units of the current enrolments of the changed and
    /// deleted people (active ones), by internal id, and of the changed and deleted
    /// duties, by duty id: what the change set takes away from `unit_roles`.
    pub enrolment_units: HashMap<String, Vec<String>>,
    pub duty_units: HashMap<String, String>,
}

pub struct Settings<'a> {
    pub source: &'a str,
    pub directory: &'a DirectoryConfig,
    pub eppn_scope: &'a str,
    pub username_context: Option<&'a str>,
    pub today: NaiveDate,
}

const DIFF_SAMPLES: usize = 500;

fn digest_of<T: Serialize>(v: &T) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

/// Organisations by id, resolving a reference to the nearest school unit code and a unit
/// to its huvudman.
struct Orgs<'a> {
    by_id: HashMap<&'a str, OrgView<'a>>,
}

/// (kind, name, parent id, school unit code).
type OrgView<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

impl<'a> Orgs<'a> {
    fn new(snapshot: &'a [ss::Organisation], existing: &'a HashMap<String, ExistingOrg>) -> Self {
        let mut by_id = HashMap::new();
        for o in existing.values() {
            by_id.insert(
                o.id.as_str(),
                (
                    o.kind.as_str(),
                    o.name.as_str(),
                    o.parent_id.as_deref(),
                    o.school_unit_code.as_deref(),
                ),
            );
        }
        for o in snapshot {
            by_id.insert(
                o.id.as_str(),
                (
                    o.organisation_type.as_str(),
                    o.display_name.as_str(),
                    o.parent.as_deref(),
                    o.school_unit_code.as_deref().filter(|c| !c.is_empty()),
                ),
            );
        }
        Orgs { by_id }
    }

    /// The school unit code of `id` or of its nearest ancestor that has one.
    fn unit(&self, id: &str) -> Option<&'a str> {
        let mut cur = id;
        for _ in 0..16 {
            let (_, _, parent, code) = self.by_id.get(cur)?;
            if let Some(c) = code {
                return Some(c);
            }
            cur = (*parent)?;
        }
        None
    }

    fn huvudman(&self, id: &str) -> Option<String> {
        let mut cur = id;
        for _ in 0..16 {
            let (kind, name, parent, _) = self.by_id.get(cur)?;
            if *kind == "Huvudman" {
                return Some(name.to_string());
            }
            cur = (*parent)?;
        }
        None
    }
}

struct Builder<'a> {
    s: &'a Settings<'a>,
    existing: &'a Existing,
    plan: Plan,
    /// Identifiers in use; grows as new people get theirs.
    plan_taken: HashSet<String>,
}

impl<'a> Builder<'a> {
    fn note(&mut self, op: &str, entity: &str, id: &str) {
        if self.plan.diff.len() < DIFF_SAMPLES {
            self.plan.diff.push(DiffEntry {
                op: op.into(),
                entity: entity.into(),
                id: id.into(),
            });
        }
    }

    fn unresolved(&mut self, what: &str) {
        *self
            .plan
            .counts
            .unresolved
            .entry(what.to_string())
            .or_default() += 1;
    }

    fn organisations(&mut self, orgs: &Orgs, snapshot: &[ss::Organisation]) {
        for o in snapshot {
            let mut row = OrgRow {
                id: o.id.clone(),
                kind: o.organisation_type.clone(),
                name: o.display_name.clone(),
                parent_id: o.parent.clone(),
                school_unit_code: o.school_unit_code.clone().filter(|c| !c.is_empty()),
                organisation_number: o.organisation_number.clone(),
                huvudman: None,
                school_types: o.school_types.clone(),
                hash: String::new(),
            };
            if row.school_unit_code.is_some() {
                row.huvudman = orgs.huvudman(&o.id);
            }
            row.hash = digest_of(&row);
            if self.existing.organisations.get(&o.id).map(|e| &e.hash) != Some(&row.hash) {
                self.note("upsert", "organisation", &o.id);
                self.plan.counts.organisations_changed += 1;
                self.plan.organisations.push(row);
            }
        }
    }

    /// The row for a register person (its status is filled in later).
    fn person_row(
        &mut self,
        p: &ss::Person,
        orgs: &Orgs,
        known_person: &dyn Fn(&str) -> bool,
    ) -> PersonRow {
        let source = self.s.source;
        let civic_no = p.civic_no.as_deref().and_then(|c| match CivicNo::parse(c) {
            Ok(c) => Some(c.as_str().to_string()),
            Err(_) => None,
        });
        if p.civic_no.is_some() && civic_no.is_none() {
            self.unresolved("Person.civicNo invalid");
        }
        let marking = p.security_marking.clone();
        let protected = marking.as_deref().is_some_and(|m| m != "Ingen");
        let mut enrolments = Vec::new();
        for e in p.enrolments.iter().filter(|e| !e.cancelled) {
            match orgs.unit(&e.enroled_at) {
                Some(unit) => enrolments.push(EnrolmentRow {
                    unit: unit.to_string(),
                    school_type: e.school_type.clone(),
                    school_year: e.school_year,
                    start: date(e.start_date),
                    end: date(e.end_date),
                }),
                None => self.unresolved("enrolment at an unknown school unit"),
            }
        }
        let mut guardians = Vec::new();
        for r in &p.responsibles {
            let relation = r.relation_type.clone().unwrap_or_default();
            if !self.s.directory.guardian_relations.contains(&relation) {
                continue;
            }
            if known_person(&r.person) {
                guardians.push((ident::person_id(source, &r.person), relation));
            } else {
                self.unresolved("responsible not in the register");
            }
        }
        guardians.sort();
        guardians.dedup();
        let mut row = PersonRow {
            id: ident::person_id(source, &p.id),
            external_id: p.id.clone(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            civic_no,
            email: school_email(&p.emails),
            emails: p
                .emails
                .iter()
                .map(|e| (e.value.clone(), e.kind.clone()))
                .collect(),
            security_marking: marking,
            protected_identity: protected,
            enrolments,
            guardians,
            hash: String::new(),
            create: None,
            status: Status {
                active: false,
                from: None,
                until: None,
            },
        };
        // The person's register record and gone-ness decide the hash; identifiers and
        // status are Portvakt's own.
        row.hash = digest_of(&(&row, gone(p)));
        row
    }

    fn group_row(
        &mut self,
        g: &ss::Group,
        orgs: &Orgs,
        known_person: &dyn Fn(&str) -> bool,
    ) -> Option<GroupRow> {
        let Some(unit) = orgs.unit(&g.organisation) else {
            self.unresolved("group at an unknown school unit");
            return None;
        };
        let mut members = Vec::new();
        for m in &g.memberships {
            if known_person(&m.person) {
                members.push((
                    ident::person_id(self.s.source, &m.person),
                    date(m.start_date),
                    date(m.end_date),
                ));
            } else {
                self.unresolved("group member not in the register");
            }
        }
        members.sort();
        members.dedup_by(|a, b| a.0 == b.0);
        let mut row = GroupRow {
            id: g.id.clone(),
            unit: unit.to_string(),
            name: g.display_name.clone(),
            kind: group_kind(&g.group_type).to_string(),
            school_type: g.school_type.clone(),
            start: date(g.start_date),
            end: date(g.end_date),
            members,
            hash: String::new(),
        };
        row.hash = digest_of(&row);
        Some(row)
    }

    fn duty_row(
        &mut self,
        d: &ss::Duty,
        orgs: &Orgs,
        known_person: &dyn Fn(&str) -> bool,
    ) -> Option<DutyRow> {
        let Some(person) = d.person.as_deref().filter(|p| known_person(p)) else {
            self.unresolved("duty of a person not in the register");
            return None;
        };
        let Some(unit) = orgs.unit(&d.duty_at) else {
            self.unresolved("duty at an unknown school unit");
            return None;
        };
        let mut row = DutyRow {
            id: d.id.clone(),
            person_id: ident::person_id(self.s.source, person),
            unit: unit.to_string(),
            duty_role: d.duty_role.clone(),
            start: date(d.start_date),
            end: date(d.end_date),
            assignments: d
                .assignment_roles
                .iter()
                .map(|a| StoredAssignment {
                    group: a.group.clone(),
                    kind: a.kind.clone(),
                    start: date(a.start_date),
                    end: date(a.end_date),
                })
                .collect(),
            hash: String::new(),
        };
        row.hash = digest_of(&row);
        Some(row)
    }

    fn status_of(&self, dates: Vec<Dates>, gone: bool) -> Status {
        let d = self.s.directory;
        match roles::window(dates, d.lead_days, d.grace_days) {
            Some(w) => Status {
                active: !gone && roles::in_window(&w, self.s.today),
                from: date(w.0),
                until: date(w.1),
            },
            None => Status {
                active: false,
                from: None,
                until: None,
            },
        }
    }

    /// Usernames and eppns for people new to the directory (incremental runs).
    fn identities(&mut self, register: &HashMap<String, RegisterIds>) {
        let mut persons = std::mem::take(&mut self.plan.persons);
        for row in persons.iter_mut().filter(|r| r.create.is_some()) {
            let ids = register.get(&row.id);
            row.create = Some(self.assign(
                &row.id,
                ids.and_then(|i| i.username.clone()),
                ids.and_then(|i| i.eppn.clone()),
            ));
        }
        self.plan.persons = persons;
    }

    /// A new person's username and eppn: the register's when usable, free and (for the
    /// eppn) without a name in it, else generated from the patterns; never one in use or
    /// tombstoned.
    fn assign(
        &mut self,
        person_id: &str,
        username: Option<String>,
        eppn: Option<String>,
    ) -> NewIdentity {
        let d = self.s.directory;
        // Config::finish checked both patterns; a bad one yields empty identifiers, which
        // the database refuses.
        let user_pattern = ident::Pattern::parse(&d.username_pattern).ok();
        let eppn_pattern = ident::Pattern::parse(&d.eppn_pattern).ok();
        let taken = &mut self.plan_taken;
        let username = match username.filter(|u| !taken.contains(u)) {
            Some(u) => u,
            None => user_pattern
                .and_then(|p| {
                    (0..)
                        .map(|attempt| p.render(person_id, attempt))
                        .find(|u| !taken.contains(u))
                })
                .unwrap_or_default(),
        };
        taken.insert(username.clone());
        let scope = self.s.eppn_scope;
        let eppn = match eppn.filter(|e| !taken.contains(e)) {
            Some(e) => e,
            None => eppn_pattern
                .and_then(|p| {
                    (0..)
                        .map(|attempt| format!("{}@{scope}", p.render(person_id, attempt)))
                        .find(|e| !taken.contains(e))
                })
                .unwrap_or_default(),
        };
        taken.insert(eppn.clone());
        NewIdentity { username, eppn }
    }
}

/// What the register offers as a new person's identifiers.
struct RegisterIds {
    username: Option<String>,
    eppn: Option<String>,
}

fn register_ids(p: &ss::Person, s: &Settings) -> RegisterIds {
    RegisterIds {
        username: s.username_context.and_then(|ctx| {
            p.external_identifiers
                .iter()
                .find(|x| x.context == ctx)
                .and_then(|x| ident::usable_username(&x.value))
        }),
        // The register's eppn, when it has one without the person's name in it
        // (Skolverket asks eppns never to carry names; `alva.l7a25@…` is refused).
        eppn: p
            .eppns
            .iter()
            .filter_map(|e| ident::usable_eppn(e))
            .find(|e| !ident::names_in(e, &p.given_name, &p.family_name)),
    }
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

/// A full run: the snapshot is the whole truth for this source.
/// Consumes the snapshot: each register person is dropped as soon as its row is built, so a
/// large municipality is not held twice.
pub fn full(snapshot: Snapshot, existing: &Existing, s: &Settings) -> Plan {
    let Snapshot {
        organisations,
        persons,
        groups,
        duties,
        ..
    } = snapshot;
    let mut b = Builder {
        s,
        existing,
        plan: empty_plan(s, RunKind::Full, existing),
        plan_taken: existing.taken.clone(),
    };
    let none = HashMap::new();
    let orgs = Orgs::new(&organisations, &none);
    b.organisations(&orgs, &organisations);
    let in_snapshot: HashSet<String> = persons.iter().map(|p| p.id.clone()).collect();
    let in_orgs: HashSet<&str> = organisations.iter().map(|o| o.id.as_str()).collect();
    for id in existing.organisations.keys() {
        if !in_orgs.contains(id.as_str()) {
            b.plan.remove_organisations.push(id.clone());
            b.plan.counts.organisations_removed += 1;
            b.note("remove", "organisation", id);
        }
    }
    let known = |id: &str| in_snapshot.contains(id);

    // Role dates per internal id, for the activity windows.
    let mut dates: HashMap<String, Vec<Dates>> = HashMap::new();
    let mut unit_roles: HashMap<String, u64> = HashMap::new();
    let mut rows = Vec::with_capacity(persons.len());
    // Popped from the end and the vector shrunk as it empties, so the register's people
    // and the planned rows are not both held in full.
    let mut persons = persons;
    while let Some(p) = persons.pop() {
        if persons.len() % 65_536 == 0 {
            persons.shrink_to_fit();
        }
        let mut row = b.person_row(&p, &orgs, &known);
        if !existing.persons.contains_key(&p.id) {
            let ids = register_ids(&p, s);
            row.create = Some(b.assign(&row.id, ids.username, ids.eppn));
        }
        let gone = gone(&p);
        drop(p);
        let own: Vec<Dates> = row
            .enrolments
            .iter()
            .map(|e| Dates::new(parse(&e.start), parse(&e.end)))
            .collect();
        dates
            .entry(row.id.clone())
            .or_default()
            .extend(own.iter().cloned());
        // A guardian is active while a child's enrolment makes them one.
        for (g, _) in &row.guardians {
            dates
                .entry(g.clone())
                .or_default()
                .extend(own.iter().cloned());
        }
        rows.push((row, gone));
    }
    for d in &duties {
        if let Some(row) = b.duty_row(d, &orgs, &known) {
            dates
                .entry(row.person_id.clone())
                .or_default()
                .push(Dates::new(parse(&row.start), parse(&row.end)));
            if existing.duties.get(&row.id) != Some(&row.hash) {
                b.plan.counts.duties_changed += 1;
                b.note("upsert", "duty", &row.id);
                b.plan.duties.push(row);
            }
        }
    }
    let in_duties: HashSet<&str> = duties.iter().map(|d| d.id.as_str()).collect();
    for id in existing
        .duties
        .keys()
        .filter(|id| !in_duties.contains(id.as_str()))
    {
        b.plan.remove_duties.push(id.clone());
        b.plan.counts.duties_removed += 1;
        b.note("remove", "duty", id);
    }

    let today = s.today;
    let mut active_ids: HashSet<String> = HashSet::new();
    for (mut row, gone) in rows {
        row.status = b.status_of(dates.remove(&row.id).unwrap_or_default(), gone);
        if row.status.active {
            active_ids.insert(row.id.clone());
            for e in &row.enrolments {
                if is_current(&Dates::new(parse(&e.start), parse(&e.end)), today) {
                    *unit_roles.entry(e.unit.clone()).or_default() += 1;
                }
            }
        }
        match existing.persons.get(&row.external_id) {
            None => {
                b.plan.counts.persons_created += 1;
                b.note("create", "person", &row.id);
                b.plan.persons.push(row);
            }
            Some(e) => {
                let was = e.status.active;
                if e.hash.as_deref() != Some(row.hash.as_str()) {
                    b.plan.counts.persons_updated += 1;
                    b.note("update", "person", &row.id);
                    count_status(&mut b.plan.counts, was, row.status.active);
                    b.plan.persons.push(row);
                } else {
                    b.plan.counts.persons_unchanged += 1;
                    if e.status != row.status {
                        count_status(&mut b.plan.counts, was, row.status.active);
                        let reason = status_reason(was, row.status.active);
                        if was != row.status.active {
                            b.note(reason, "person", &row.id);
                        }
                        b.plan.status.push(StatusChange {
                            person_id: row.id,
                            status: row.status,
                            reason: reason.into(),
                        });
                    }
                }
            }
        }
    }
    for d in &duties {
        if let Some(p) = &d.person {
            let id = ident::person_id(s.source, p);
            let dates = Dates::new(d.start_date, d.end_date);
            if active_ids.contains(&id)
                && is_current(&dates, today)
                && let Some(unit) = orgs.unit(&d.duty_at)
            {
                *unit_roles.entry(unit.to_string()).or_default() += 1;
            }
        }
    }
    // People of this source who left the register.
    for (ext, e) in &existing.persons {
        if in_snapshot.contains(ext.as_str()) {
            continue;
        }
        if e.status.active {
            b.plan.counts.deactivations += 1;
            b.note("deactivate", "person", &e.id);
        }
        if e.status.active || e.hash.is_some() {
            b.plan.status.push(StatusChange {
                person_id: e.id.clone(),
                status: Status {
                    active: false,
                    from: e.status.from.clone(),
                    until: e.status.until.clone(),
                },
                reason: "left the register".into(),
            });
        }
    }
    let in_groups: HashSet<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    for g in &groups {
        if let Some(row) = b.group_row(g, &orgs, &known)
            && existing.groups.get(&row.id) != Some(&row.hash)
        {
            b.plan.counts.groups_changed += 1;
            b.note("upsert", "group", &row.id);
            b.plan.groups.push(row);
        }
    }
    for id in existing
        .groups
        .keys()
        .filter(|id| !in_groups.contains(id.as_str()))
    {
        b.plan.remove_groups.push(id.clone());
        b.plan.counts.groups_removed += 1;
        b.note("remove", "group", id);
    }
    b.plan.emptied_units = existing
        .unit_roles
        .iter()
        .filter(|(unit, n)| **n > 0 && unit_roles.get(*unit).copied().unwrap_or(0) == 0)
        .map(|(unit, _)| unit.clone())
        .collect();
    b.plan.emptied_units.sort();
    b.plan
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
    }
}

/// Register ids an incremental plan needs from the database: changed and deleted people,
/// the people the changes refer to, and (for windows) the guardians of changed children.
pub fn incremental_person_refs(changes: &ChangeSet) -> Vec<String> {
    let c = &changes.changed;
    let mut ids: Vec<String> = c.persons.iter().map(|p| p.id.clone()).collect();
    ids.extend(changes.deleted.persons.iter().cloned());
    for p in &c.persons {
        ids.extend(p.responsibles.iter().map(|r| r.person.clone()));
    }
    for g in &c.groups {
        ids.extend(g.memberships.iter().map(|m| m.person.clone()));
    }
    ids.extend(c.duties.iter().filter_map(|d| d.person.clone()));
    ids.sort();
    ids.dedup();
    ids
}

/// An incremental run: only what changed, plus the status of everyone it affects.
///
/// `existing` must hold the people named by [`incremental_person_refs`], every
/// organisation of the source, the stored hashes of the changed groups and duties, and the
/// stored role dates of the affected people (own_dates, duty_dates, children, guardians_of).
pub fn incremental(changes: &ChangeSet, existing: &Existing, s: &Settings) -> Plan {
    let c = &changes.changed;
    let mut b = Builder {
        s,
        existing,
        plan: empty_plan(s, RunKind::Incremental, existing),
        plan_taken: existing.taken.clone(),
    };
    let orgs = Orgs::new(&c.organisations, &existing.organisations);
    b.organisations(&orgs, &c.organisations);
    for id in &changes.deleted.organisations {
        if existing.organisations.contains_key(id) {
            b.plan.remove_organisations.push(id.clone());
            b.plan.counts.organisations_removed += 1;
            b.note("remove", "organisation", id);
        }
    }
    let deleted: HashSet<&str> = changes.deleted.persons.iter().map(String::as_str).collect();
    let changed_ext: HashSet<&str> = c.persons.iter().map(|p| p.id.as_str()).collect();
    let known = |id: &str| {
        !deleted.contains(id) && (changed_ext.contains(id) || existing.persons.contains_key(id))
    };

    // Stored role dates, overlaid with the change set.
    let mut own: HashMap<String, Vec<Dates>> = existing.own_dates.clone();
    let mut duty_dates: HashMap<String, Vec<(String, Dates)>> = existing.duty_dates.clone();
    let mut children = existing.children.clone();
    let mut affected: HashSet<String> = HashSet::new();
    let mut rows = Vec::new();
    for p in &c.persons {
        let row = b.person_row(p, &orgs, &known);
        own.insert(
            row.id.clone(),
            row.enrolments
                .iter()
                .map(|e| Dates::new(parse(&e.start), parse(&e.end)))
                .collect(),
        );
        // The child's guardians are replaced: old ones lose it, new ones gain it.
        for g in existing.guardians_of.get(&row.id).into_iter().flatten() {
            if let Some(list) = children.get_mut(g) {
                list.retain(|ch| ch != &row.id);
            }
            affected.insert(g.clone());
        }
        for (g, _) in &row.guardians {
            children.entry(g.clone()).or_default().push(row.id.clone());
            affected.insert(g.clone());
        }
        affected.insert(row.id.clone());
        rows.push((row, gone(p)));
    }
    let deleted_duties: HashSet<&str> = changes.deleted.duties.iter().map(String::as_str).collect();
    for list in duty_dates.values_mut() {
        list.retain(|(id, _)| !deleted_duties.contains(id.as_str()));
    }
    for d in &c.duties {
        for list in duty_dates.values_mut() {
            list.retain(|(id, _)| id != &d.id);
        }
        if let Some(row) = b.duty_row(d, &orgs, &known) {
            duty_dates.entry(row.person_id.clone()).or_default().push((
                row.id.clone(),
                Dates::new(parse(&row.start), parse(&row.end)),
            ));
            affected.insert(row.person_id.clone());
            if existing.duties.get(&row.id) != Some(&row.hash) {
                b.plan.counts.duties_changed += 1;
                b.note("upsert", "duty", &row.id);
                b.plan.duties.push(row);
            }
        }
    }
    for (person, list) in &existing.duty_dates {
        if list
            .iter()
            .any(|(id, _)| deleted_duties.contains(id.as_str()))
        {
            affected.insert(person.clone());
        }
    }
    for id in &changes.deleted.duties {
        if existing.duties.contains_key(id) {
            b.plan.remove_duties.push(id.clone());
            b.plan.counts.duties_removed += 1;
            b.note("remove", "duty", id);
        }
    }
    // People who left: their enrolments no longer keep their guardians active.
    for ext in &changes.deleted.persons {
        if let Some(e) = existing.persons.get(ext) {
            own.insert(e.id.clone(), Vec::new());
            affected.extend(
                existing
                    .guardians_of
                    .get(&e.id)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
    }
    let status_of = |b: &Builder, id: &str, gone: bool| {
        let mut dates: Vec<Dates> = own.get(id).cloned().unwrap_or_default();
        dates.extend(
            duty_dates
                .get(id)
                .into_iter()
                .flatten()
                .map(|(_, d)| d.clone()),
        );
        for ch in children.get(id).into_iter().flatten() {
            dates.extend(own.get(ch).cloned().unwrap_or_default());
        }
        b.status_of(dates, gone)
    };
    let by_internal: HashMap<String, &ExistingPerson> = existing
        .persons
        .values()
        .map(|e| (e.id.clone(), e))
        .collect();
    for (mut row, gone) in rows {
        row.status = status_of(&b, &row.id, gone);
        affected.remove(&row.id);
        match existing.persons.get(&row.external_id) {
            None => {
                b.plan.counts.persons_created += 1;
                b.note("create", "person", &row.id);
                row.create = Some(NewIdentity {
                    username: String::new(),
                    eppn: String::new(),
                });
                b.plan.persons.push(row);
            }
            Some(e) => {
                if e.hash.as_deref() == Some(row.hash.as_str()) && e.status == row.status {
                    b.plan.counts.persons_unchanged += 1;
                    continue;
                }
                b.plan.counts.persons_updated += 1;
                b.note("update", "person", &row.id);
                count_status(&mut b.plan.counts, e.status.active, row.status.active);
                b.plan.persons.push(row);
            }
        }
    }
    for ext in &changes.deleted.persons {
        let Some(e) = existing.persons.get(ext) else {
            continue;
        };
        affected.remove(&e.id);
        if e.status.active {
            b.plan.counts.deactivations += 1;
            b.note("deactivate", "person", &e.id);
        }
        b.plan.status.push(StatusChange {
            person_id: e.id.clone(),
            status: Status {
                active: false,
                from: e.status.from.clone(),
                until: e.status.until.clone(),
            },
            reason: "left the register".into(),
        });
    }
    // Unchanged people whose status the changes move (a guardian whose only child left).
    let mut others: Vec<String> = affected.into_iter().collect();
    others.sort();
    for id in others {
        let Some(e) = by_internal.get(&id) else {
            continue;
        };
        let status = status_of(&b, &id, false);
        if e.status != status {
            let reason = status_reason(e.status.active, status.active);
            count_status(&mut b.plan.counts, e.status.active, status.active);
            if e.status.active != status.active {
                b.note(reason, "person", &id);
            }
            b.plan.status.push(StatusChange {
                person_id: id,
                status,
                reason: reason.into(),
            });
        }
    }
    let register: HashMap<String, RegisterIds> = c
        .persons
        .iter()
        .filter(|p| !existing.persons.contains_key(&p.id))
        .map(|p| (ident::person_id(s.source, &p.id), register_ids(p, s)))
        .collect();
    b.identities(&register);
    for g in &c.groups {
        if let Some(row) = b.group_row(g, &orgs, &known)
            && existing.groups.get(&row.id) != Some(&row.hash)
        {
            b.plan.counts.groups_changed += 1;
            b.note("upsert", "group", &row.id);
            b.plan.groups.push(row);
        }
    }
    for id in &changes.deleted.groups {
        if existing.groups.contains_key(id) {
            b.plan.remove_groups.push(id.clone());
            b.plan.counts.groups_removed += 1;
            b.note("remove", "group", id);
        }
    }
    b.plan.emptied_units = emptied_by_changes(changes, existing, &b.plan, s);
    b.plan
}

/// School units whose every current role the change set takes away: the stored counts,
/// minus what the changed and deleted people and duties had, plus what they have now.
fn emptied_by_changes(
    changes: &ChangeSet,
    existing: &Existing,
    plan: &Plan,
    s: &Settings,
) -> Vec<String> {
    let mut after: HashMap<String, i64> = existing
        .unit_roles
        .iter()
        .map(|(u, n)| (u.clone(), i64::try_from(*n).unwrap_or(i64::MAX)))
        .collect();
    let mut take = |unit: &str, n: i64| *after.entry(unit.to_string()).or_default() += n;
    let people = changes
        .changed
        .persons
        .iter()
        .map(|p| ident::person_id(s.source, &p.id))
        .chain(
            changes
                .deleted
                .persons
                .iter()
                .map(|p| ident::person_id(s.source, p)),
        );
    for id in people {
        for unit in existing.enrolment_units.get(&id).into_iter().flatten() {
            take(unit, -1);
        }
    }
    let duties = changes
        .changed
        .duties
        .iter()
        .map(|d| &d.id)
        .chain(changes.deleted.duties.iter());
    for id in duties {
        if let Some(unit) = existing.duty_units.get(id) {
            take(unit, -1);
        }
    }
    let active_after: HashMap<&str, bool> = plan
        .persons
        .iter()
        .map(|p| (p.id.as_str(), p.status.active))
        .chain(
            plan.status
                .iter()
                .map(|c| (c.person_id.as_str(), c.status.active)),
        )
        .collect();
    for p in plan.persons.iter().filter(|p| p.status.active) {
        for e in &p.enrolments {
            if is_current(&Dates::new(parse(&e.start), parse(&e.end)), s.today) {
                take(&e.unit, 1);
            }
        }
    }
    // A changed duty whose hash did not change is not in the plan but still counts.
    let deleted: HashSet<&str> = changes.deleted.persons.iter().map(String::as_str).collect();
    for d in &changes.changed.duties {
        let Some(person) = d.person.as_deref().filter(|p| !deleted.contains(p)) else {
            continue;
        };
        let id = ident::person_id(s.source, person);
        let active = active_after.get(id.as_str()).copied().unwrap_or_else(|| {
            existing
                .persons
                .get(person)
                .is_some_and(|e| e.status.active)
        });
        let unit = plan
            .duties
            .iter()
            .find(|r| r.id == d.id)
            .map(|r| r.unit.clone())
            .or_else(|| existing.duty_units.get(&d.id).cloned());
        if let Some(unit) = unit
            && active
            && is_current(&Dates::new(d.start_date, d.end_date), s.today)
        {
            take(&unit, 1);
        }
    }
    let mut emptied: Vec<String> = existing
        .unit_roles
        .iter()
        .filter(|(u, n)| **n > 0 && after.get(*u).copied().unwrap_or(0) <= 0)
        .map(|(u, _)| u.clone())
        .collect();
    emptied.sort();
    emptied
}

/// Why a plan must wait for an administrator, if it must.
pub fn guard(plan: &Plan, max_share: f64) -> Option<String> {
    let c = &plan.counts;
    if c.active_before > 0 && c.deactivations > 0 {
        let share = c.deactivations as f64 / c.active_before as f64;
        if share > max_share {
            return Some(format!(
                "the plan would deactivate {} of {} active people ({:.1}%, the limit is {:.1}%)",
                c.deactivations,
                c.active_before,
                share * 100.0,
                max_share * 100.0
            ));
        }
    }
    if !plan.emptied_units.is_empty() {
        return Some(format!(
            "the plan would remove every role of school unit {}",
            plan.emptied_units.join(", ")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::ss12000::types::{Enrolment, Organisation, Person, Responsible};

    fn d(s: &str) -> NaiveDate {
        roles::parse_date(s).unwrap()
    }

    fn unit() -> Organisation {
        Organisation {
            id: "u1".into(),
            display_name: "Ekskolan".into(),
            organisation_type: "Skolenhet".into(),
            school_unit_code: Some("12345678".into()),
            organisation_code: None,
            organisation_number: None,
            parent: None,
            school_types: vec!["GR".into()],
            start_date: None,
            end_date: None,
            modified: 0,
        }
    }

    fn pupil(id: &str, start: &str, end: &str, guardian: Option<&str>) -> Person {
        Person {
            id: id.into(),
            given_name: "Åsa".into(),
            family_name: "Öberg".into(),
            civic_no: None,
            eppns: vec![],
            external_identifiers: vec![],
            security_marking: Some("Ingen".into()),
            person_status: None,
            emails: vec![],
            enrolments: vec![Enrolment {
                enroled_at: "u1".into(),
                school_type: Some("GR".into()),
                school_year: Some(7),
                start_date: Some(d(start)),
                end_date: Some(d(end)),
                cancelled: false,
            }],
            responsibles: guardian
                .map(|g| {
                    vec![Responsible {
                        person: g.into(),
                        relation_type: Some("Vårdnadshavare".into()),
                    }]
                })
                .unwrap_or_default(),
            modified: 0,
        }
    }

    fn adult(id: &str) -> Person {
        Person {
            enrolments: vec![],
            ..pupil(id, "2026-01-01", "2026-01-01", None)
        }
    }

    fn settings<'a>(cfg: &'a DirectoryConfig, today: &str) -> Settings<'a> {
        Settings {
            source: "reg",
            directory: cfg,
            eppn_scope: "skola.example.se",
            username_context: None,
            today: d(today),
        }
    }

    fn snapshot(persons: Vec<Person>) -> Snapshot {
        Snapshot {
            organisations: vec![unit()],
            persons,
            ..Default::default()
        }
    }

    /// The directory after applying `plan` to nothing (status as planned).
    fn existing_after(plan: &Plan) -> Existing {
        let mut e = Existing::default();
        for o in &plan.organisations {
            e.organisations.insert(
                o.id.clone(),
                ExistingOrg {
                    id: o.id.clone(),
                    kind: o.kind.clone(),
                    name: o.name.clone(),
                    parent_id: o.parent_id.clone(),
                    school_unit_code: o.school_unit_code.clone(),
                    hash: o.hash.clone(),
                },
            );
        }
        for p in &plan.persons {
            e.persons.insert(
                p.external_id.clone(),
                ExistingPerson {
                    id: p.id.clone(),
                    hash: Some(p.hash.clone()),
                    status: p.status.clone(),
                },
            );
            if p.status.active {
                e.active += 1;
            }
        }
        e
    }

    #[test]
    fn a_first_run_creates_everyone_with_name_free_identifiers() {
        let cfg = DirectoryConfig::default();
        let s = settings(&cfg, "2026-10-01");
        let plan = full(
            snapshot(vec![
                pupil("p1", "2026-08-17", "2027-06-11", Some("g1")),
                adult("g1"),
            ]),
            &Existing::default(),
            &s,
        );
        assert_eq!(plan.counts.persons_created, 2);
        let child = plan.persons.iter().find(|p| p.external_id == "p1").unwrap();
        let guardian = plan.persons.iter().find(|p| p.external_id == "g1").unwrap();
        assert!(
            child.status.active && guardian.status.active,
            "the guardian through the child"
        );
        let ident = child.create.as_ref().unwrap();
        assert!(!ident.username.contains("sa") && !ident.eppn.contains("berg"));
        assert!(ident.eppn.ends_with("@skola.example.se"));
        assert_eq!(
            child.guardians,
            vec![(guardian.id.clone(), "Vårdnadshavare".into())]
        );
        assert!(guard(&plan, 0.05).is_none());
    }

    #[test]
    fn the_registers_eppn_is_used_only_without_a_name_in_it() {
        let cfg = DirectoryConfig::default();
        let mut named = pupil("p1", "2026-08-17", "2027-06-11", None);
        named.eppns = vec!["asa.oberg@edu.example.se".into()];
        let mut opaque = pupil("p2", "2026-08-17", "2027-06-11", None);
        opaque.eppns = vec!["k7x2p9@edu.example.se".into()];
        let plan = full(
            snapshot(vec![named, opaque]),
            &Existing::default(),
            &settings(&cfg, "2026-10-01"),
        );
        let eppn = |ext: &str| {
            let row = plan.persons.iter().find(|p| p.external_id == ext).unwrap();
            row.create.as_ref().unwrap().eppn.clone()
        };
        assert!(eppn("p1").ends_with("@skola.example.se"), "{}", eppn("p1"));
        assert_eq!(eppn("p2"), "k7x2p9@edu.example.se");
    }

    #[test]
    fn an_unchanged_register_plans_nothing_and_the_summer_keeps_pupils() {
        let cfg = DirectoryConfig::default();
        let people = vec![pupil("p1", "2025-08-18", "2026-06-12", None)];
        let first = full(
            snapshot(people.clone()),
            &Existing::default(),
            &settings(&cfg, "2026-05-01"),
        );
        let existing = existing_after(&first);
        // July: the enrolment ended, the grace period keeps the pupil active.
        let july = full(
            snapshot(people.clone()),
            &existing,
            &settings(&cfg, "2026-07-20"),
        );
        assert!(july.is_empty(), "{:?}", july.counts);
        // Past the grace period (June 12 + 75 days = August 26) the pupil is deactivated.
        let autumn = full(snapshot(people), &existing, &settings(&cfg, "2026-08-27"));
        assert_eq!(autumn.counts.deactivations, 1);
        assert_eq!(autumn.status.len(), 1);
    }

    #[test]
    fn the_guard_stops_a_mass_deactivation_and_an_emptied_unit() {
        let cfg = DirectoryConfig::default();
        let s = settings(&cfg, "2026-10-01");
        let people: Vec<Person> = (0..40)
            .map(|i| pupil(&format!("p{i}"), "2026-08-17", "2027-06-11", None))
            .collect();
        let mut existing =
            existing_after(&full(snapshot(people.clone()), &Existing::default(), &s));
        // Two of forty (5%) is allowed; three is not.
        let plan = full(snapshot(people[2..].to_vec()), &existing, &s);
        assert_eq!(plan.counts.deactivations, 2);
        assert!(guard(&plan, 0.05).is_none());
        let plan = full(snapshot(people[3..].to_vec()), &existing, &s);
        assert!(guard(&plan, 0.05).unwrap().contains("3 of 40"));
        // Every enrolment of the unit gone, nobody deactivated (they stay through… nothing:
        // without a role they are inactive) — either reason holds the plan.
        existing.unit_roles.insert("12345678".into(), 40);
        let emptied: Vec<Person> = people
            .iter()
            .map(|p| Person {
                enrolments: vec![],
                ..p.clone()
            })
            .collect();
        let plan = full(snapshot(emptied), &existing, &s);
        assert_eq!(plan.emptied_units, vec!["12345678".to_string()]);
        assert!(
            guard(&plan, 1.0)
                .unwrap()
                .contains("every role of school unit 12345678")
        );
    }
}
