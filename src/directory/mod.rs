//! The directory: people, their roles per school unit, groups and guardianships, and what
//! a relying party may learn about them (`release`). Storage returns these model types;
//! protocol fronts ask `release` for claims and never read the tables themselves.

pub mod ident;
pub mod model;
pub mod release;
pub mod roles;

pub use model::{CivicNo, NewPerson, Person, PersonDetails, Role, RoleKind};

use crate::storage::{self, Db};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} already exists")]
    Exists(&'static str),
    #[error("no such person: {0}")]
    NotFound(String),
    #[error(transparent)]
    Storage(storage::StorageError),
}

impl From<storage::StorageError> for DirectoryError {
    fn from(e: storage::StorageError) -> Self {
        match e {
            storage::StorageError::Conflict(what) => DirectoryError::Exists(what),
            other => DirectoryError::Storage(other),
        }
    }
}

/// Creates a local person with an opaque, never reused eduPersonPrincipalName.
pub async fn add_person(
    db: &Db,
    new: &NewPerson,
    eppn_scope: &str,
    now: i64,
) -> Result<Person, DirectoryError> {
    let mut tx = db.begin().await?;
    let person = add_person_in(&mut tx, new, eppn_scope, now).await?;
    tx.commit().await?;
    Ok(person)
}

/// `add_person` inside the caller's transaction (the admin UI writes its audit event in it).
pub async fn add_person_in(
    tx: &mut storage::Tx,
    new: &NewPerson,
    eppn_scope: &str,
    now: i64,
) -> Result<Person, DirectoryError> {
    new.validate()?;
    for role in &new.roles {
        if let Some(code) = &role.school_unit_code
            && storage::persons::school_unit_in(tx, code).await?.is_none()
        {
            return Err(DirectoryError::Invalid(format!(
                "unknown school unit code: {code}"
            )));
        }
    }
    let id = uuid::Uuid::new_v4();
    // The eppn is derived from the random id, not the name: it is opaque and cannot be
    // reassigned to someone else when a name is reused.
    let eppn = format!("{}@{}", &id.simple().to_string()[..16], eppn_scope);
    let person = Person {
        id: id.to_string(),
        username: new.username.to_lowercase(),
        eppn,
        given_name: new.given_name.clone(),
        family_name: new.family_name.clone(),
        email: new.email.clone(),
        civic_no: new.civic_no.clone(),
        protected_identity: new.protected_identity,
        active: true,
        source: new.source.clone(),
        external_id: None,
        deactivated_at: None,
    };
    let search_name = ident::search_name(&person.given_name, &person.family_name);
    storage::persons::insert_in(tx, &person, &new.roles, &search_name, now).await?;
    Ok(person)
}

/// People whose name holds every word of `text` (folded: "asa oberg" finds Åsa Öberg) or
/// whose username is `text`, by username. Protected identities only when
/// `include_protected`.
pub async fn search(
    db: &Db,
    text: &str,
    include_protected: bool,
    limit: i64,
) -> Result<Vec<Person>, storage::StorageError> {
    let q = storage::person_search::PersonQuery {
        words: ident::search_words(text),
        username: Some(text.trim().to_lowercase()),
        include_protected,
        by_username: true,
        limit,
        ..Default::default()
    };
    storage::person_search::find(db, &q).await
}

/// A person by username, eppn, register id, internal id or civic number (`person show KEY`).
pub async fn by_key(db: &Db, key: &str) -> Result<Vec<Person>, storage::StorageError> {
    storage::persons::by_key(db, key, CivicNo::parse(key).ok().as_ref()).await
}

/// A person with their facts, the roles and groups that count `today`, and what may be
/// released about them.
pub async fn details(
    db: &Db,
    cfg: &crate::config::DirectoryConfig,
    person: Person,
    today: chrono::NaiveDate,
) -> Result<PersonDetails, DirectoryError> {
    let facts = storage::persons::facts(db, &person.id).await?;
    Ok(details_of(cfg, person, facts, today))
}

/// A person by id with their details, in one read (`storage::persons::with_facts`): the
/// token path's.
pub async fn details_by_id(
    db: &Db,
    cfg: &crate::config::DirectoryConfig,
    id: &str,
    today: chrono::NaiveDate,
) -> Result<Option<PersonDetails>, DirectoryError> {
    Ok(storage::persons::with_facts(db, id)
        .await?
        .map(|(person, facts)| details_of(cfg, person, facts, today)))
}

/// `details` from facts already read.
pub fn details_of(
    cfg: &crate::config::DirectoryConfig,
    person: Person,
    facts: model::Facts,
    today: chrono::NaiveDate,
) -> PersonDetails {
    let (roles, groups, grades) = roles::current(&facts, cfg, today);
    let derived = roles::derive(
        &facts,
        person.protected_identity,
        &roles,
        &groups,
        &grades,
        cfg,
    );
    PersonDetails {
        person,
        roles,
        groups,
        facts,
        derived,
    }
}

/// A person as `portvakt person show` prints it: facts with their dates, the roles and
/// groups that count today, and the attributes a relying party could receive.
pub fn show(d: &PersonDetails, scope: &str) -> serde_json::Value {
    use serde_json::json;
    let p = &d.person;
    let dates = |x: &roles::Dates| {
        json!({
            "start": x.start.map(roles::format_date),
            "end": x.end.map(roles::format_date),
        })
    };
    let relative = |r: &roles::RelativeFact| {
        json!({
            "username": r.username, "eppn": r.eppn, "relation": r.relation_type,
            "active": r.active, "protected_identity": r.protected_identity,
        })
    };
    let f = &d.facts;
    let derived = &d.derived;
    json!({
        "id": p.id,
        "username": p.username,
        "eppn": p.eppn,
        "given_name": p.given_name,
        "family_name": p.family_name,
        "email": p.email,
        "civic_no": p.civic_no.as_ref().map(|c| c.as_str()),
        "protected_identity": p.protected_identity,
        "active": p.active,
        "deactivated_at": p.deactivated_at,
        "source": p.source,
        "external_id": p.external_id,
        "roles": d.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "groups": d.groups.iter().map(|g| json!({"id": g.id, "name": g.name, "kind": g.kind, "school_unit_code": g.school_unit_code})).collect::<Vec<_>>(),
        "facts": {
            "local_roles": f.local_roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "enrolments": f.enrolments.iter().map(|e| json!({
                "school_unit_code": e.school_unit_code, "school_type": e.school_type,
                "school_year": e.school_year, "dates": dates(&e.dates),
            })).collect::<Vec<_>>(),
            "duties": f.duties.iter().map(|x| json!({
                "id": x.id, "school_unit_code": x.school_unit_code, "duty_role": x.duty_role,
                "dates": dates(&x.dates),
                "assignments": x.assignments.iter().map(|a| json!({"group": a.group_id, "kind": a.kind, "dates": dates(&a.dates)})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "memberships": f.memberships.iter().map(|m| json!({"group": m.group.name, "kind": m.group.kind, "dates": dates(&m.dates)})).collect::<Vec<_>>(),
            "guardian_of": f.children.iter().map(relative).collect::<Vec<_>>(),
            "guardians": f.guardians.iter().map(relative).collect::<Vec<_>>(),
        },
        "release": {
            "eduPersonAffiliation": derived.affiliations,
            "eduPersonScopedAffiliation": derived.affiliations.iter().map(|a| format!("{a}@{scope}")).collect::<Vec<_>>(),
            "eduPersonEntitlement": derived.entitlements,
            "sisSchoolUnitCode": derived.school_unit_codes,
            "sisSchoolGrade": derived.school_grades,
            "groups": derived.groups,
            "sisLegalGuardianFor": derived.guardian_for,
            "norEduPersonNIN": if p.protected_identity { json!("withheld: protected identity") } else { json!(p.civic_no.as_ref().map(|c| c.as_str())) },
        },
    })
}

/// The text form of [`show`]: one `key: value` line per field, nested with indentation.
pub fn show_text(v: &serde_json::Value) -> String {
    fn walk(out: &mut String, v: &serde_json::Value, indent: usize) {
        let pad = "  ".repeat(indent);
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match x {
                        serde_json::Value::Object(_) => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            walk(out, x, indent + 1);
                        }
                        serde_json::Value::Array(a) if a.iter().any(|e| e.is_object()) => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            for e in a {
                                out.push_str(&format!("{pad}  -\n"));
                                walk(out, e, indent + 2);
                            }
                        }
                        _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(x))),
                    }
                }
            }
            other => out.push_str(&format!("{pad}{}\n", scalar(other))),
        }
    }
    fn scalar(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::Null => "-".into(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(", "),
            other => other.to_string(),
        }
    }
    let mut out = String::new();
    walk(&mut out, v, 0);
    out
}
