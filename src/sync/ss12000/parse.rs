//! Tolerant parsing of SS 12000 v2.1 JSON into [`super::types`] (specs/ss12000.md §3, §5, §6).
//!
//! A page is parsed once into a `serde_json::Value` and each record is then taken apart by
//! moving its strings out (no copies). Nothing here fails a run for a single record: an
//! unknown field or enum value is counted and kept as sent, and a record without a required
//! field or with an unparsable date is skipped and counted. Only a body that is not an
//! SS 12000 list at all is an error. This module does no I/O.

use super::types::{
    AssignmentRole, Deleted, Duty, Email, Enrolment, ExternalIdentifier, Group, Membership,
    Organisation, ParseReport, Person, Responsible,
};
use chrono::{DateTime, NaiveDate};
use serde_json::{Map, Value};

/// Why a response body is not an SS 12000 list (the whole page is unusable).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body has neither a \"data\" array nor a \"{0}\" array")]
    NoData(&'static str),
    #[error("\"pageToken\" is neither a string nor null")]
    BadPageToken,
}

/// One page of a list endpoint.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// None when this was the last page (null, absent or empty).
    pub page_token: Option<String>,
}

/// An entity read from a list endpoint.
pub trait Entity: Sized {
    /// The schema name used in report keys (`Person`).
    const NAME: &'static str;
    /// The collection name: the path and the key Skolverket's reference API uses (`persons`).
    const PLURAL: &'static str;
    /// Converts one record; `None` when it was skipped (and counted in `report`).
    fn from_value(v: Value, report: &mut ParseReport) -> Option<Self>;
}

/// Parses a list page: `{"data": [...], "pageToken": ...}` or `{"<plural>": [...]}`.
pub fn page<T: Entity>(body: &[u8], report: &mut ParseReport) -> Result<Page<T>, ParseError> {
    let mut map = object_body(body)?;
    let page_token = page_token(&mut map)?;
    let data = match map.remove("data") {
        Some(Value::Array(a)) => a,
        _ => match map.remove(T::PLURAL) {
            Some(Value::Array(a)) => a,
            _ => return Err(ParseError::NoData(T::PLURAL)),
        },
    };
    let mut items = Vec::with_capacity(data.len());
    for v in data {
        if let Some(item) = T::from_value(v, report) {
            items.push(item);
        }
    }
    Ok(Page { items, page_token })
}

/// Parses a `/deletedEntities` page into the four types Portvakt reads; other keys
/// (`activitites`, `placements`, …) are valid and ignored.
pub fn deleted_page(body: &[u8], report: &mut ParseReport) -> Result<Page<Deleted>, ParseError> {
    let mut map = object_body(body)?;
    let page_token = page_token(&mut map)?;
    let Some(Value::Object(data)) = map.remove("data") else {
        return Err(ParseError::NoData("deletedEntities"));
    };
    let mut deleted = Deleted::default();
    for (key, value) in data {
        let target = match key.as_str() {
            "organisations" => &mut deleted.organisations,
            "persons" => &mut deleted.persons,
            "groups" => &mut deleted.groups,
            "duties" => &mut deleted.duties,
            _ => continue,
        };
        let Value::Array(ids) = value else {
            bump(
                &mut report.skipped,
                format!("DeletedEntities: {key} is not an array"),
            );
            continue;
        };
        for id in ids {
            match id {
                Value::String(s) if !s.is_empty() => target.push(s),
                _ => bump(
                    &mut report.skipped,
                    format!("DeletedEntities: bad id in {key}"),
                ),
            }
        }
    }
    Ok(Page {
        items: vec![deleted],
        page_token,
    })
}

/// The page token alone, without building the page: lets the client ask for the next page
/// while this one is parsed elsewhere. `data` is skipped, not materialised.
pub fn peek_page_token(body: &[u8]) -> Result<Option<String>, ParseError> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "pageToken", default)]
        page_token: Option<serde_json::Value>,
    }
    let env: Envelope =
        serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    match env.page_token {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ParseError::BadPageToken),
    }
}

fn object_body(body: &[u8]) -> Result<Map<String, Value>, ParseError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ParseError::NotJson("the top level is not an object".into())),
        Err(e) => Err(ParseError::NotJson(e.to_string())),
    }
}

fn page_token(map: &mut Map<String, Value>) -> Result<Option<String>, ParseError> {
    match map.remove("pageToken") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ParseError::BadPageToken),
    }
}

/// The enum values of SS 12000 v2.1 (specs/ss12000.md §5).
pub mod known {
    pub const SECURITY_MARKING: &[&str] = &["Ingen", "Sekretessmarkering", "Skyddad folkbokföring"];
    pub const PERSON_STATUS: &[&str] = &["Aktiv", "Utvandrad", "Avliden"];
    pub const SEX: &[&str] = &["Man", "Kvinna", "Okänt"];
    pub const EMAIL_TYPE: &[&str] = &["Privat", "Skola elev", "Skola personal", "Arbete övrigt"];
    pub const RELATION_TYPE: &[&str] = &[
        "Vårdnadshavare",
        "Annan ansvarig",
        "God man",
        "Utsedd behörig",
    ];
    pub const ORGANISATION_TYPE: &[&str] = &[
        "Huvudman",
        "Verksamhetsområde",
        "Förvaltning",
        "Rektorsområde",
        "Skola",
        "Skolenhet",
        "Varumärke",
        "Bolag",
        "Övrigt",
    ];
    pub const DUTY_ROLE: &[&str] = &[
        "Rektor",
        "Lärare",
        "Förskollärare",
        "Barnskötare",
        "Bibliotekarie",
        "Lärarassistent",
        "Fritidspedagog",
        "Annan personal",
        "Studie- och yrkesvägledare",
        "Förstelärare",
        "Kurator",
        "Skolsköterska",
        "Skolläkare",
        "Skolpsykolog",
        "Speciallärare/specialpedagog",
        "Skoladministratör",
        "Övrig arbetsledning",
        "Övrig pedagogisk personal",
        "Förskolechef",
    ];
    pub const ASSIGNMENT_ROLE_TYPE: &[&str] = &[
        "Mentor",
        "Förskollärare",
        "Barnskötare",
        "Fritidspedagog",
        "Specialpedagog",
        "Elevhälsopersonal",
        "Pedagogisk ledare",
        "Schemaläggare",
        "Lärarassistent",
        "Administrativ personal",
    ];
    pub const GROUP_TYPE: &[&str] = &[
        "Undervisning",
        "Klass",
        "Mentor",
        "Provgrupp",
        "Schema",
        "Avdelning",
        "Personalgrupp",
        "Övrigt",
    ];
    pub const SCHOOL_TYPE: &[&str] = &[
        "FS", "FKLASS", "FTH", "OPPFTH", "GR", "GRS", "TR", "SP", "SAM", "GY", "GYS", "VUX",
        "VUXSFI", "VUXGR", "VUXGY", "VUXSARGR", "VUXSARTR", "VUXSARGY", "SFI", "SARVUX",
        "SARVUXGR", "SARVUXGY", "KU", "YH", "FHS", "STF", "KKU", "HS", "ABU", "AU",
    ];
}

fn bump(map: &mut std::collections::BTreeMap<String, u64>, key: String) {
    *map.entry(key).or_insert(0) += 1;
}

/// Why a record is skipped; becomes the report key `"<Entity>: <reason>"`.
struct Skip(String);

impl Skip {
    fn missing(field: &str) -> Self {
        Skip(format!("missing {field}"))
    }
    fn date(field: &str) -> Self {
        Skip(format!("unparsable {field}"))
    }
}

/// The per-record reader: knows the entity name for report keys.
struct Rd<'a> {
    entity: &'static str,
    report: &'a mut ParseReport,
}

impl Rd<'_> {
    fn unknown_field(&mut self, path: &str, key: &str) {
        bump(
            &mut self.report.unknown_fields,
            format!("{}.{path}{key}", self.entity),
        );
    }

    /// Counts a value outside the spec's enum (the value is kept by the caller).
    fn check_enum(&mut self, field: &str, value: &str, known: &[&str]) {
        if !known.contains(&value) {
            bump(
                &mut self.report.unknown_values,
                format!("{}.{field}={value}", self.entity),
            );
        }
    }

    /// A value of the wrong JSON type in a field we do not require: counted, then ignored.
    fn wrong_type(&mut self, field: &str, v: &Value) {
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "<bool>",
            Value::Number(_) => "<number>",
            Value::String(_) => "<string>",
            Value::Array(_) => "<array>",
            Value::Object(_) => "<object>",
        };
        bump(
            &mut self.report.unknown_values,
            format!("{}.{field}={kind}", self.entity),
        );
    }

    /// An optional string; null counts as absent.
    fn opt_str(&mut self, field: &str, v: Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => {
                self.wrong_type(field, &other);
                None
            }
        }
    }

    fn opt_enum(&mut self, field: &str, v: Value, known: &[&str]) -> Option<String> {
        let s = self.opt_str(field, v)?;
        self.check_enum(field, &s, known);
        Some(s)
    }

    /// An optional `YYYY-MM-DD`; present but unparsable skips the record.
    fn opt_date(&mut self, field: &str, v: Value) -> Result<Option<NaiveDate>, Skip> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => crate::directory::model::parse_date(&s)
                .map(Some)
                .ok_or_else(|| Skip::date(field)),
            _ => Err(Skip::date(field)),
        }
    }

    /// The id of an ObjectReference `{ "id": …, "displayName"?: … }`.
    fn reference(&mut self, field: &str, v: Value) -> Option<String> {
        let Value::Object(m) = v else {
            if !v.is_null() {
                self.wrong_type(field, &v);
            }
            return None;
        };
        let mut id = None;
        for (k, v) in m {
            match k.as_str() {
                "id" => id = self.opt_str(field, v).filter(|s| !s.is_empty()),
                "displayName" | "securityMarking" => {}
                _ => self.unknown_field(&format!("{field}."), &k),
            }
        }
        id
    }

    /// An array field; null or absent is empty, another type is counted and ignored.
    fn array(&mut self, field: &str, v: Value) -> Vec<Value> {
        match v {
            Value::Array(a) => a,
            Value::Null => Vec::new(),
            other => {
                self.wrong_type(field, &other);
                Vec::new()
            }
        }
    }

    fn string_array(&mut self, field: &str, v: Value, known: Option<&[&str]>) -> Vec<String> {
        let mut out = Vec::new();
        for item in self.array(field, v) {
            if let Some(s) = self.opt_str(field, item) {
                if let Some(known) = known {
                    self.check_enum(field, &s, known);
                }
                out.push(s);
            }
        }
        out
    }

    /// `meta.modified` as unix seconds; a missing meta or modified is 0.
    fn meta(&mut self, v: Value) -> Result<i64, Skip> {
        let Value::Object(m) = v else {
            return Ok(0);
        };
        match m.get("modified") {
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                .map(|d| d.timestamp())
                .map_err(|_| Skip::date("meta.modified")),
            None | Some(Value::Null) => Ok(0),
            Some(_) => Err(Skip::date("meta.modified")),
        }
    }

    fn object(&mut self, field: &str, v: Value) -> Result<Map<String, Value>, Skip> {
        match v {
            Value::Object(m) => Ok(m),
            _ => Err(Skip(format!("{field} is not an object"))),
        }
    }

    fn skip(&mut self, why: Skip) {
        bump(
            &mut self.report.skipped,
            format!("{}: {}", self.entity, why.0),
        );
    }
}

/// Runs a record conversion and counts a skip.
fn record<T>(
    entity: &'static str,
    v: Value,
    report: &mut ParseReport,
    f: impl FnOnce(&mut Rd<'_>, Map<String, Value>) -> Result<T, Skip>,
) -> Option<T> {
    let mut rd = Rd { entity, report };
    let result = match v {
        Value::Object(m) => f(&mut rd, m),
        _ => Err(Skip("not an object".into())),
    };
    match result {
        Ok(t) => Some(t),
        Err(why) => {
            rd.skip(why);
            None
        }
    }
}

fn required<T>(v: Option<T>, field: &str) -> Result<T, Skip> {
    v.ok_or_else(|| Skip::missing(field))
}

/// A required non-empty string.
fn nonempty(v: Option<String>, field: &str) -> Result<String, Skip> {
    required(v.filter(|s| !s.is_empty()), field)
}

impl Entity for Organisation {
    const NAME: &'static str = "Organisation";
    const PLURAL: &'static str = "organisations";

    fn from_value(v: Value, report: &mut ParseReport) -> Option<Self> {
        record(Self::NAME, v, report, |rd, m| {
            let (mut id, mut display_name, mut organisation_type) = (None, None, None);
            let mut o = Organisation {
                id: String::new(),
                display_name: String::new(),
                organisation_type: String::new(),
                school_unit_code: None,
                organisation_code: None,
                organisation_number: None,
                parent: None,
                school_types: Vec::new(),
                start_date: None,
                end_date: None,
                modified: 0,
            };
            for (k, v) in m {
                match k.as_str() {
                    "id" => id = rd.opt_str("id", v),
                    "meta" => o.modified = rd.meta(v)?,
                    "displayName" => display_name = rd.opt_str("displayName", v),
                    "organisationType" => {
                        organisation_type =
                            rd.opt_enum("organisationType", v, known::ORGANISATION_TYPE)
                    }
                    "schoolUnitCode" => o.school_unit_code = rd.opt_str("schoolUnitCode", v),
                    "organisationCode" => o.organisation_code = rd.opt_str("organisationCode", v),
                    "organisationNumber" => {
                        o.organisation_number = rd.opt_str("organisationNumber", v)
                    }
                    "parentOrganisation" => o.parent = rd.reference("parentOrganisation", v),
                    "schoolTypes" => {
                        o.school_types = rd.string_array("schoolTypes", v, Some(known::SCHOOL_TYPE))
                    }
                    "startDate" => o.start_date = rd.opt_date("startDate", v)?,
                    "endDate" => o.end_date = rd.opt_date("endDate", v)?,
                    "address" | "municipalityCode" | "url" | "email" | "phoneNumber"
                    | "contactInfo" | "_embedded" => {}
                    _ => rd.unknown_field("", &k),
                }
            }
            o.id = nonempty(id, "id")?;
            o.display_name = nonempty(display_name, "displayName")?;
            o.organisation_type = nonempty(organisation_type, "organisationType")?;
            Ok(o)
        })
    }
}

impl Entity for Person {
    const NAME: &'static str = "Person";
    const PLURAL: &'static str = "persons";

    fn from_value(v: Value, report: &mut ParseReport) -> Option<Self> {
        record(Self::NAME, v, report, |rd, m| {
            let (mut id, mut given, mut family) = (None, None, None);
            let mut p = Person {
                id: String::new(),
                given_name: String::new(),
                family_name: String::new(),
                civic_no: None,
                eppns: Vec::new(),
                external_identifiers: Vec::new(),
                security_marking: None,
                person_status: None,
                emails: Vec::new(),
                enrolments: Vec::new(),
                responsibles: Vec::new(),
                modified: 0,
            };
            for (k, v) in m {
                match k.as_str() {
                    "id" => id = rd.opt_str("id", v),
                    "meta" => p.modified = rd.meta(v)?,
                    "givenName" => given = rd.opt_str("givenName", v),
                    "familyName" => family = rd.opt_str("familyName", v),
                    "civicNo" => p.civic_no = civic_no(rd, v),
                    "eduPersonPrincipalNames" => {
                        p.eppns = rd.string_array("eduPersonPrincipalNames", v, None)
                    }
                    "externalIdentifiers" => {
                        for e in rd.array("externalIdentifiers", v) {
                            p.external_identifiers.push(external_identifier(rd, e)?);
                        }
                    }
                    "securityMarking" => {
                        p.security_marking =
                            rd.opt_enum("securityMarking", v, known::SECURITY_MARKING)
                    }
                    "personStatus" => {
                        p.person_status = rd.opt_enum("personStatus", v, known::PERSON_STATUS)
                    }
                    "sex" => {
                        rd.opt_enum("sex", v, known::SEX);
                    }
                    "emails" => {
                        for e in rd.array("emails", v) {
                            p.emails.push(email(rd, e)?);
                        }
                    }
                    "enrolments" => {
                        for e in rd.array("enrolments", v) {
                            p.enrolments.push(enrolment(rd, e)?);
                        }
                    }
                    "responsibles" => {
                        for r in rd.array("responsibles", v) {
                            p.responsibles.push(responsible(rd, r)?);
                        }
                    }
                    // Known but unused; the expand keys for servers that embed them
                    // beside `_embedded` rather than in it.
                    "middleName" | "birthDate" | "phoneNumbers" | "addresses" | "photo"
                    | "_embedded" | "responsibleFor" | "placements" | "ownedPlacements"
                    | "duties" | "groupMemberships" => {}
                    _ => rd.unknown_field("", &k),
                }
            }
            p.id = nonempty(id, "id")?;
            p.given_name = nonempty(given, "givenName")?;
            p.family_name = nonempty(family, "familyName")?;
            Ok(p)
        })
    }
}

fn civic_no(rd: &mut Rd<'_>, v: Value) -> Option<String> {
    let Value::Object(m) = v else {
        if !v.is_null() {
            rd.wrong_type("civicNo", &v);
        }
        return None;
    };
    let mut value = None;
    for (k, v) in m {
        match k.as_str() {
            "value" => value = rd.opt_str("civicNo.value", v),
            "nationality" => {}
            _ => rd.unknown_field("civicNo.", &k),
        }
    }
    value
}

fn external_identifier(rd: &mut Rd<'_>, v: Value) -> Result<ExternalIdentifier, Skip> {
    let m = rd.object("externalIdentifiers", v)?;
    let (mut value, mut context, mut globally_unique) = (None, None, false);
    for (k, v) in m {
        match k.as_str() {
            "value" => value = rd.opt_str("externalIdentifiers.value", v),
            "context" => context = rd.opt_str("externalIdentifiers.context", v),
            "globallyUnique" => match v {
                Value::Bool(b) => globally_unique = b,
                other => rd.wrong_type("externalIdentifiers.globallyUnique", &other),
            },
            _ => rd.unknown_field("externalIdentifiers.", &k),
        }
    }
    Ok(ExternalIdentifier {
        value: nonempty(value, "externalIdentifiers.value")?,
        context: required(context, "externalIdentifiers.context")?,
        globally_unique,
    })
}

fn email(rd: &mut Rd<'_>, v: Value) -> Result<Email, Skip> {
    let m = rd.object("emails", v)?;
    let (mut value, mut kind) = (None, None);
    for (k, v) in m {
        match k.as_str() {
            "value" => value = rd.opt_str("emails.value", v),
            "type" => kind = rd.opt_enum("emails.type", v, known::EMAIL_TYPE),
            _ => rd.unknown_field("emails.", &k),
        }
    }
    Ok(Email {
        value: nonempty(value, "emails.value")?,
        kind: required(kind, "emails.type")?,
    })
}

fn enrolment(rd: &mut Rd<'_>, v: Value) -> Result<Enrolment, Skip> {
    let m = rd.object("enrolments", v)?;
    let mut enroled_at = None;
    let mut e = Enrolment {
        enroled_at: String::new(),
        school_type: None,
        school_year: None,
        start_date: None,
        end_date: None,
        cancelled: false,
    };
    for (k, v) in m {
        match k.as_str() {
            "enroledAt" => enroled_at = rd.reference("enrolments.enroledAt", v),
            "schoolType" => {
                e.school_type = rd.opt_enum("enrolments.schoolType", v, known::SCHOOL_TYPE)
            }
            "schoolYear" => match v {
                Value::Number(n) => match n.as_i64().and_then(|n| i32::try_from(n).ok()) {
                    Some(n) => e.school_year = Some(n),
                    None => rd.wrong_type("enrolments.schoolYear", &Value::Number(n)),
                },
                Value::Null => {}
                other => rd.wrong_type("enrolments.schoolYear", &other),
            },
            "startDate" => e.start_date = rd.opt_date("enrolments.startDate", v)?,
            "endDate" => e.end_date = rd.opt_date("enrolments.endDate", v)?,
            "cancelled" => match v {
                Value::Bool(b) => e.cancelled = b,
                Value::Null => {}
                other => rd.wrong_type("enrolments.cancelled", &other),
            },
            "educationCode" | "programme" | "specification" => {}
            _ => rd.unknown_field("enrolments.", &k),
        }
    }
    e.enroled_at = required(enroled_at, "enrolments.enroledAt")?;
    Ok(e)
}

fn responsible(rd: &mut Rd<'_>, v: Value) -> Result<Responsible, Skip> {
    let m = rd.object("responsibles", v)?;
    let (mut person, mut relation_type) = (None, None);
    for (k, v) in m {
        match k.as_str() {
            "person" => person = rd.reference("responsibles.person", v),
            "relationType" => {
                relation_type = rd.opt_enum("responsibles.relationType", v, known::RELATION_TYPE)
            }
            _ => rd.unknown_field("responsibles.", &k),
        }
    }
    Ok(Responsible {
        person: required(person, "responsibles.person")?,
        relation_type,
    })
}

impl Entity for Duty {
    const NAME: &'static str = "Duty";
    const PLURAL: &'static str = "duties";

    fn from_value(v: Value, report: &mut ParseReport) -> Option<Self> {
        record(Self::NAME, v, report, |rd, m| {
            let (mut id, mut duty_at, mut duty_role) = (None, None, None);
            let mut d = Duty {
                id: String::new(),
                person: None,
                duty_at: String::new(),
                duty_role: String::new(),
                start_date: None,
                end_date: None,
                assignment_roles: Vec::new(),
                modified: 0,
            };
            for (k, v) in m {
                match k.as_str() {
                    "id" => id = rd.opt_str("id", v),
                    "meta" => d.modified = rd.meta(v)?,
                    "person" => d.person = rd.reference("person", v),
                    "dutyAt" => duty_at = rd.reference("dutyAt", v),
                    "dutyRole" => duty_role = rd.opt_enum("dutyRole", v, known::DUTY_ROLE),
                    "startDate" => d.start_date = rd.opt_date("startDate", v)?,
                    "endDate" => d.end_date = rd.opt_date("endDate", v)?,
                    "assignmentRole" => {
                        for a in rd.array("assignmentRole", v) {
                            d.assignment_roles.push(assignment_role(rd, a)?);
                        }
                    }
                    "description" | "signature" | "dutyPercent" | "hoursPerYear" | "_embedded" => {}
                    _ => rd.unknown_field("", &k),
                }
            }
            d.id = nonempty(id, "id")?;
            d.duty_at = required(duty_at, "dutyAt")?;
            d.duty_role = nonempty(duty_role, "dutyRole")?;
            Ok(d)
        })
    }
}

fn assignment_role(rd: &mut Rd<'_>, v: Value) -> Result<AssignmentRole, Skip> {
    let m = rd.object("assignmentRole", v)?;
    let (mut group, mut kind) = (None, None);
    let (mut start_date, mut end_date) = (None, None);
    for (k, v) in m {
        match k.as_str() {
            "group" => group = rd.reference("assignmentRole.group", v),
            "assignmentRoleType" => {
                kind = rd.opt_enum(
                    "assignmentRole.assignmentRoleType",
                    v,
                    known::ASSIGNMENT_ROLE_TYPE,
                )
            }
            "startDate" => start_date = rd.opt_date("assignmentRole.startDate", v)?,
            "endDate" => end_date = rd.opt_date("assignmentRole.endDate", v)?,
            _ => rd.unknown_field("assignmentRole.", &k),
        }
    }
    Ok(AssignmentRole {
        group: required(group, "assignmentRole.group")?,
        kind: nonempty(kind, "assignmentRole.assignmentRoleType")?,
        start_date,
        end_date,
    })
}

impl Entity for Group {
    const NAME: &'static str = "Group";
    const PLURAL: &'static str = "groups";

    fn from_value(v: Value, report: &mut ParseReport) -> Option<Self> {
        record(Self::NAME, v, report, |rd, m| {
            let (mut id, mut display_name, mut group_type, mut organisation) =
                (None, None, None, None);
            let mut g = Group {
                id: String::new(),
                display_name: String::new(),
                group_type: String::new(),
                school_type: None,
                organisation: String::new(),
                start_date: None,
                end_date: None,
                memberships: Vec::new(),
                modified: 0,
            };
            for (k, v) in m {
                match k.as_str() {
                    "id" => id = rd.opt_str("id", v),
                    "meta" => g.modified = rd.meta(v)?,
                    "displayName" => display_name = rd.opt_str("displayName", v),
                    "groupType" => group_type = rd.opt_enum("groupType", v, known::GROUP_TYPE),
                    "schoolType" => {
                        g.school_type = rd.opt_enum("schoolType", v, known::SCHOOL_TYPE)
                    }
                    "organisation" => organisation = rd.reference("organisation", v),
                    "startDate" => g.start_date = rd.opt_date("startDate", v)?,
                    "endDate" => g.end_date = rd.opt_date("endDate", v)?,
                    "groupMemberships" => {
                        for m in rd.array("groupMemberships", v) {
                            g.memberships.push(membership(rd, m)?);
                        }
                    }
                    "_embedded" | "assignmentRoles" => {}
                    _ => rd.unknown_field("", &k),
                }
            }
            g.id = nonempty(id, "id")?;
            g.display_name = nonempty(display_name, "displayName")?;
            g.group_type = nonempty(group_type, "groupType")?;
            g.organisation = required(organisation, "organisation")?;
            Ok(g)
        })
    }
}

fn membership(rd: &mut Rd<'_>, v: Value) -> Result<Membership, Skip> {
    let m = rd.object("groupMemberships", v)?;
    let mut person = None;
    let (mut start_date, mut end_date) = (None, None);
    for (k, v) in m {
        match k.as_str() {
            "person" => person = rd.reference("groupMemberships.person", v),
            "startDate" => start_date = rd.opt_date("groupMemberships.startDate", v)?,
            "endDate" => end_date = rd.opt_date("groupMemberships.endDate", v)?,
            _ => rd.unknown_field("groupMemberships.", &k),
        }
    }
    Ok(Membership {
        person: required(person, "groupMemberships.person")?,
        start_date,
        end_date,
    })
}

#[cfg(test)]
mod tests;
