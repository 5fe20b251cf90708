//! The rows a sync writes (organisations, people with their enrolments, groups with their
//! members, duties with their assignments, status changes) and the stored state a plan is
//! computed against ([`Existing`]).

use super::super::persons::StoredAssignment;
use crate::directory::model::Dates;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

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

/// What the directory holds for one person of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingPerson {
    pub id: String,
    pub hash: Option<String>,
    pub status: Status,
    /// The civic number as stored: a register that changes it re-binds the account to
    /// another person, which the guard counts and the apply audits.
    pub civic_no: Option<String>,
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
    /// By register id (foldhash: a full run looks every register person up here).
    pub persons: foldhash::HashMap<String, ExistingPerson>,
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
