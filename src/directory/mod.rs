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
    new.validate()?;
    for role in &new.roles {
        if let Some(code) = &role.school_unit_code
            && storage::persons::school_unit(db, code).await?.is_none()
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
    storage::persons::insert(db, &person, &new.roles, now).await?;
    Ok(person)
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
    let (roles, groups, grades) = roles::current(&facts, cfg, today);
    let derived = roles::derive(
        &facts,
        person.protected_identity,
        &roles,
        &groups,
        &grades,
        cfg,
    );
    Ok(PersonDetails {
        person,
        roles,
        groups,
        facts,
        derived,
    })
}
