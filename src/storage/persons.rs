//! persons, person_roles, school_units, school_groups, group_members, guardianships, credentials.

use super::{Db, Result, on_conflict};
use crate::directory::model::{CivicNo, GroupRef, Person, Role, RoleKind};
use sqlx::Row;
use sqlx::any::AnyRow;

macro_rules! person_columns {
    () => {
        "id, username, eppn, given_name, family_name, email, civic_no, \
     protected_identity, status, source"
    };
}

fn person_from_row(r: &AnyRow) -> Result<Person> {
    Ok(Person {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        eppn: r.try_get("eppn")?,
        given_name: r.try_get("given_name")?,
        family_name: r.try_get("family_name")?,
        email: r.try_get("email")?,
        civic_no: r
            .try_get::<Option<String>, _>("civic_no")?
            .map(CivicNo::from_stored),
        protected_identity: r.try_get::<i64, _>("protected_identity")? != 0,
        active: r.try_get::<String, _>("status")? == "active",
        source: r.try_get("source")?,
    })
}

/// Inserts a person and their roles in one transaction.
pub async fn insert(db: &Db, p: &Person, roles: &[Role], now: i64) -> Result<()> {
    let mut tx = db.writer().begin().await?;
    sqlx::query(
        "INSERT INTO persons (id, username, eppn, given_name, family_name, email, civic_no, \
         protected_identity, status, source, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(&p.id)
    .bind(&p.username)
    .bind(&p.eppn)
    .bind(&p.given_name)
    .bind(&p.family_name)
    .bind(&p.email)
    .bind(p.civic_no.as_ref().map(|c| c.as_str().to_string()))
    .bind(i64::from(p.protected_identity))
    .bind(if p.active { "active" } else { "inactive" })
    .bind(&p.source)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(on_conflict("a person with that username"))?;
    for role in roles {
        sqlx::query(
            "INSERT INTO person_roles (person_id, role, school_unit_code) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&p.id)
        .bind(role.kind.as_str())
        .bind(role.school_unit_code.clone().unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Finds a person by username or eduPersonPrincipalName (case-insensitive username).
pub async fn by_login_name(db: &Db, name: &str) -> Result<Option<Person>> {
    let sql = concat!(
        "SELECT ",
        person_columns!(),
        " FROM persons WHERE username = $1 OR eppn = $2 LIMIT 1"
    );
    let row = sqlx::query(sql)
        .bind(name.to_lowercase())
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(person_from_row).transpose()
}

/// A person by username or eppn together with their password hash, in one query (the
/// login path).
pub async fn login_candidate(db: &Db, name: &str) -> Result<Option<(Person, Option<String>)>> {
    let sql = concat!(
        "SELECT ",
        person_columns!(),
        ", (SELECT password_hash FROM credentials c WHERE c.person_id = persons.id) AS password_hash \
         FROM persons WHERE username = $1 OR eppn = $2 LIMIT 1"
    );
    let row = sqlx::query(sql)
        .bind(name.to_lowercase())
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| Ok((person_from_row(&r)?, r.try_get("password_hash")?)))
        .transpose()
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<Person>> {
    let sql = concat!("SELECT ", person_columns!(), " FROM persons WHERE id = $1");
    let row = sqlx::query(sql).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(person_from_row).transpose()
}

pub async fn list(db: &Db) -> Result<Vec<Person>> {
    let sql = concat!(
        "SELECT ",
        person_columns!(),
        " FROM persons ORDER BY username"
    );
    let rows = sqlx::query(sql).fetch_all(db.pool()).await?;
    rows.iter().map(person_from_row).collect()
}

pub async fn roles(db: &Db, person_id: &str) -> Result<Vec<Role>> {
    let rows = sqlx::query(
        "SELECT role, school_unit_code FROM person_roles WHERE person_id = $1 \
         ORDER BY role, school_unit_code",
    )
    .bind(person_id)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let role: String = r.try_get("role")?;
        let unit: String = r.try_get("school_unit_code")?;
        let kind = RoleKind::parse(&role)
            .ok_or_else(|| super::StorageError::Corrupt(format!("unknown role {role}")))?;
        out.push(Role {
            kind,
            school_unit_code: (!unit.is_empty()).then_some(unit),
        });
    }
    Ok(out)
}

pub async fn groups(db: &Db, person_id: &str) -> Result<Vec<GroupRef>> {
    let rows = sqlx::query(
        "SELECT g.id, g.name, g.school_unit_code FROM school_groups g \
         JOIN group_members m ON m.group_id = g.id WHERE m.person_id = $1 ORDER BY g.name",
    )
    .bind(person_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(GroupRef {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                school_unit_code: r.try_get("school_unit_code")?,
            })
        })
        .collect()
}

pub async fn school_unit(db: &Db, code: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT name FROM school_units WHERE code = $1")
        .bind(code)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.try_get("name")).transpose()?)
}

/// (code, name) of every school unit.
pub async fn school_units(db: &Db) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT code, name FROM school_units ORDER BY code")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("code")?, r.try_get("name")?)))
        .collect()
}

pub async fn upsert_school_unit(db: &Db, code: &str, name: &str, source: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO school_units (code, name, source) VALUES ($1, $2, $3) \
         ON CONFLICT (code) DO UPDATE SET name = excluded.name",
    )
    .bind(code)
    .bind(name)
    .bind(source)
    .execute(db.writer())
    .await?;
    Ok(())
}

pub async fn upsert_group(db: &Db, id: &str, unit: &str, name: &str, source: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO school_groups (id, school_unit_code, name, source) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name",
    )
    .bind(id)
    .bind(unit)
    .bind(name)
    .bind(source)
    .execute(db.writer())
    .await?;
    Ok(())
}

pub async fn add_group_member(db: &Db, group_id: &str, person_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO group_members (group_id, person_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(group_id)
    .bind(person_id)
    .execute(db.writer())
    .await?;
    Ok(())
}

pub async fn add_guardianship(db: &Db, guardian_id: &str, student_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO guardianships (guardian_id, student_id) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(guardian_id)
    .bind(student_id)
    .execute(db.writer())
    .await?;
    Ok(())
}

pub async fn set_password_hash(db: &Db, person_id: &str, hash: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO credentials (person_id, password_hash, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (person_id) DO UPDATE SET password_hash = excluded.password_hash, \
         updated_at = excluded.updated_at",
    )
    .bind(person_id)
    .bind(hash)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

pub async fn password_hash(db: &Db, person_id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT password_hash FROM credentials WHERE person_id = $1")
        .bind(person_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.try_get("password_hash")).transpose()?)
}

/// The eppns of a guardian's active children who do not have a protected identity (a
/// protected child's guardian link is never released).
pub async fn children_eppns(db: &Db, guardian_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT p.eppn FROM guardianships g JOIN persons p ON p.id = g.student_id \
         WHERE g.guardian_id = $1 AND p.status = 'active' AND p.protected_identity = 0 \
         ORDER BY p.eppn",
    )
    .bind(guardian_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok(sqlx::Row::try_get::<String, _>(r, "eppn")?))
        .collect()
}
