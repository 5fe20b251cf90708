//! The SS 12000 v2.1 entities Portvakt reads, as parsed at the edge (specs/ss12000.md §5).
//!
//! Parsing is tolerant: an unknown field or enum value does not fail a run; it is counted in
//! [`ParseReport`] and the value is kept as its string. A record that lacks a required field
//! (an id, a name, a reference) is skipped and counted, never half-read.

use chrono::NaiveDate;
use std::collections::BTreeMap;

/// An organisation: huvudman, förvaltning, skola or skolenhet (`organisation_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: String,
    pub display_name: String,
    /// `Huvudman`, `Skolenhet`, … as sent.
    pub organisation_type: String,
    pub school_unit_code: Option<String>,
    pub organisation_code: Option<String>,
    pub organisation_number: Option<String>,
    pub parent: Option<String>,
    pub school_types: Vec<String>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// `meta.modified`, unix seconds.
    pub modified: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentifier {
    pub value: String,
    pub context: String,
    pub globally_unique: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub value: String,
    /// `Privat`, `Skola elev`, `Skola personal`, `Arbete övrigt`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// The organisation id of `enroledAt` (a school unit).
    pub enroled_at: String,
    pub school_type: Option<String>,
    pub school_year: Option<i32>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responsible {
    /// The guardian's person id.
    pub person: String,
    /// `Vårdnadshavare`, `Annan ansvarig`, `God man`, `Utsedd behörig`, … as sent.
    pub relation_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    /// `civicNo.value`, as sent (12 characters expected; validated by the directory).
    pub civic_no: Option<String>,
    pub eppns: Vec<String>,
    pub external_identifiers: Vec<ExternalIdentifier>,
    /// `Ingen`, `Sekretessmarkering`, `Skyddad folkbokföring`; None when absent.
    pub security_marking: Option<String>,
    /// `Aktiv` (the default), `Utvandrad`, `Avliden`.
    pub person_status: Option<String>,
    pub emails: Vec<Email>,
    pub enrolments: Vec<Enrolment>,
    pub responsibles: Vec<Responsible>,
    pub modified: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRole {
    pub group: String,
    /// `Mentor`, … as sent.
    pub kind: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duty {
    pub id: String,
    /// None when the register hides the person; such a duty is skipped by the plan.
    pub person: Option<String>,
    pub duty_at: String,
    /// `Lärare`, `Rektor`, … as sent.
    pub duty_role: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub assignment_roles: Vec<AssignmentRole>,
    pub modified: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub person: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    /// `Klass`, `Undervisning`, `Mentor`, … as sent.
    pub group_type: String,
    pub school_type: Option<String>,
    pub organisation: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub memberships: Vec<Membership>,
    pub modified: i64,
}

/// What a run read and what it could not understand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseReport {
    /// `"Person.securityMarking=Hemlig"` → how many times.
    pub unknown_values: BTreeMap<String, u64>,
    /// `"Person.favouriteColour"` → how many times.
    pub unknown_fields: BTreeMap<String, u64>,
    /// `"Duty: missing dutyAt"` → how many records were skipped for it.
    pub skipped: BTreeMap<String, u64>,
    pub requests: u64,
    pub retries: u64,
}

impl ParseReport {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: ParseReport) {
        for (into, from) in [
            (&mut self.unknown_values, other.unknown_values),
            (&mut self.unknown_fields, other.unknown_fields),
            (&mut self.skipped, other.skipped),
        ] {
            for (k, v) in from {
                *into.entry(k).or_default() += v;
            }
        }
        self.requests += other.requests;
        self.retries += other.retries;
    }
}

/// Everything a full run reads, in dependency order.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub organisations: Vec<Organisation>,
    pub persons: Vec<Person>,
    pub groups: Vec<Group>,
    pub duties: Vec<Duty>,
    pub report: ParseReport,
}

/// Ids named by `/deletedEntities`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    pub organisations: Vec<String>,
    pub persons: Vec<String>,
    pub groups: Vec<String>,
    pub duties: Vec<String>,
}

/// What an incremental run reads: entities modified after the watermark, and deletions.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    pub changed: Snapshot,
    pub deleted: Deleted,
}
