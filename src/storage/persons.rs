//! persons, person_roles, school_units, school_groups, group_members, guardianships, credentials.

use super::{Db, Result, on_conflict};
use crate::directory::model::{
    AssignmentFact, CivicNo, Dates, DutyFact, EnrolmentFact, Facts, GroupRef, MembershipFact,
    Person, RelativeFact, Role, RoleKind, parse_date,
};
use sqlx::Row;
use sqlx::any::AnyRow;

macro_rules! person_columns {
    () => {
        "id, username, eppn, given_name, family_name, email, civic_no, \
     protected_identity, status, source, external_id, deactivated_at"
    };
}

/// The person columns, for the searches in `person_search`.
pub(super) const COLUMNS: &str = person_columns!();

pub(super) fn person_from_row(r: &AnyRow) -> Result<Person> {
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
        external_id: r.try_get("external_id")?,
        deactivated_at: r.try_get("deactivated_at")?,
    })
}

/// Inserts a person and their roles in the caller's transaction. `search_name` is the
/// person's search key (`directory::ident::search_name`).
pub async fn insert_in(
    tx: &mut super::Tx,
    p: &Person,
    roles: &[Role],
    search_name: &str,
    now: i64,
) -> Result<()> {
    let tx = tx.conn();
    sqlx::query(
        "INSERT INTO persons (id, username, eppn, given_name, family_name, email, civic_no, \
         protected_identity, status, source, created_at, updated_at, search_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)",
    )
    .bind(&p.id)
    .bind(&p.username)
    .bind(&p.eppn)
    .bind(&p.given_name)
    .bind(&p.family_name)
    .bind(&p.email)
    .bind(p.civic_no.as_ref().map(|c| c.as_str().to_string()))
    .bind(i64::from(p.protected_identity))
    .bind(if p.active { "active" } else { "deactivated" })
    .bind(&p.source)
    .bind(now)
    .bind(search_name)
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
    Ok(())
}

/// Replaces a person's local roles (the admin UI), in the caller's transaction.
pub async fn set_local_roles_in(tx: &mut super::Tx, person_id: &str, roles: &[Role]) -> Result<()> {
    let conn = tx.conn();
    sqlx::query("DELETE FROM person_roles WHERE person_id = $1")
        .bind(person_id)
        .execute(&mut *conn)
        .await?;
    for role in roles {
        sqlx::query(
            "INSERT INTO person_roles (person_id, role, school_unit_code) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(person_id)
        .bind(role.kind.as_str())
        .bind(role.school_unit_code.clone().unwrap_or_default())
        .execute(&mut *conn)
        .await?;
    }
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

fn group_from_row(r: &AnyRow) -> Result<GroupRef> {
    Ok(GroupRef {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        school_unit_code: r.try_get("school_unit_code")?,
        kind: r.try_get("kind")?,
    })
}

/// Everything the directory knows about a person's place in the schools (`with_facts`
/// without the person).
pub async fn facts(db: &Db, person_id: &str) -> Result<Facts> {
    Ok(with_facts(db, person_id)
        .await?
        .map(|(_, facts)| facts)
        .unwrap_or_default())
}

/// A person and their facts in one statement: each list of facts rides on the person's row
/// as a JSON array built by the engine (json_group_array / json_agg), in the order the
/// separate reads had. The token and SSO paths read this once per ID token or assertion;
/// seven reads cost seven hand-offs to sqlx's connection threads (docs/benchmarks.md,
/// issue 16). A duty's assignment groups, when there are any, take one more read.
pub async fn with_facts(db: &Db, id: &str) -> Result<Option<(Person, Facts)>> {
    static SQL: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
        [
            with_facts_sql(super::Backend::Sqlite),
            with_facts_sql(super::Backend::Postgres),
        ]
    });
    let sql = match db.backend() {
        super::Backend::Sqlite => SQL[0].as_str(),
        super::Backend::Postgres => SQL[1].as_str(),
    };
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
    else {
        return Ok(None);
    };
    let person = person_from_row(&row)?;
    let list = |col: &str| -> Result<String> { Ok(row.try_get::<String, _>(col)?) };
    let local_roles = parse_json::<Vec<(String, String)>>(&list("f_roles")?)?
        .into_iter()
        .map(|(role, unit)| {
            let kind = RoleKind::parse(&role)
                .ok_or_else(|| super::StorageError::Corrupt(format!("unknown role {role}")))?;
            Ok(Role {
                kind,
                school_unit_code: (!unit.is_empty()).then_some(unit),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    type Enrolment = (
        String,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let enrolments = parse_json::<Vec<Enrolment>>(&list("f_enrolments")?)?
        .into_iter()
        .map(|(unit, school_type, year, start, end)| EnrolmentFact {
            school_unit_code: unit,
            school_type,
            school_year: year.and_then(|y| i32::try_from(y).ok()),
            dates: text_dates(start, end),
        })
        .collect();
    type Duty = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
    );
    let mut duties = Vec::new();
    let mut assignment_ids = Vec::new();
    for (duty_id, unit, duty_role, start, end, stored) in
        parse_json::<Vec<Duty>>(&list("f_duties")?)?
    {
        let stored: Vec<StoredAssignment> = parse_json(&stored)?;
        let assignments: Vec<AssignmentFact> = stored
            .into_iter()
            .map(|a| AssignmentFact {
                group_id: a.group,
                kind: a.kind,
                dates: Dates::new(
                    a.start.as_deref().and_then(parse_date),
                    a.end.as_deref().and_then(parse_date),
                ),
            })
            .collect();
        assignment_ids.extend(assignments.iter().map(|a| a.group_id.clone()));
        duties.push(DutyFact {
            id: duty_id,
            school_unit_code: unit,
            duty_role,
            dates: text_dates(start, end),
            assignments,
        });
    }
    let assignment_groups = groups_in_order(db, &assignment_ids).await?;
    type Membership = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let memberships = parse_json::<Vec<Membership>>(&list("f_memberships")?)?
        .into_iter()
        .map(|(gid, name, unit, kind, start, end)| MembershipFact {
            group: GroupRef {
                id: gid,
                name,
                school_unit_code: unit,
                kind,
            },
            dates: text_dates(start, end),
        })
        .collect();
    type Relative = (String, String, String, String, i64, String);
    let relatives = |col: &str| -> Result<Vec<RelativeFact>> {
        Ok(parse_json::<Vec<Relative>>(&list(col)?)?
            .into_iter()
            .map(
                |(pid, username, eppn, relation_type, protected, status)| RelativeFact {
                    person_id: pid,
                    username,
                    eppn,
                    relation_type,
                    protected_identity: protected != 0,
                    active: status == "active",
                },
            )
            .collect())
    };
    let facts = Facts {
        local_roles,
        enrolments,
        duties,
        children: relatives("f_children")?,
        guardians: relatives("f_guardians")?,
        memberships,
        assignment_groups,
    };
    Ok(Some((person, facts)))
}

/// `with_facts`' statement for one engine.
fn with_facts_sql(backend: super::Backend) -> String {
    let list = |cols: &str, rest: &str, order: &str| match backend {
        super::Backend::Sqlite => {
            format!("(SELECT json_group_array(json_array({cols}) ORDER BY {order}) {rest})")
        }
        super::Backend::Postgres => format!(
            "(SELECT COALESCE(json_agg(json_build_array({cols}) ORDER BY {order}), '[]'::json)::text {rest})"
        ),
    };
    let relatives = |other: &str, this: &str| {
        list(
            "r.id, r.username, r.eppn, g.relation_type, r.protected_identity, r.status",
            &format!("FROM guardianships g JOIN persons r ON r.id = g.{other} WHERE g.{this} = $1"),
            "r.eppn",
        )
    };
    format!(
        "SELECT {}, {} AS f_roles, {} AS f_enrolments, {} AS f_duties, {} AS f_memberships, \
         {} AS f_children, {} AS f_guardians FROM persons WHERE id = $1",
        person_columns!(),
        list(
            "role, school_unit_code",
            "FROM person_roles WHERE person_id = $1",
            "role, school_unit_code"
        ),
        list(
            "school_unit_code, school_type, school_year, start_date, end_date",
            "FROM enrolments WHERE person_id = $1",
            "seq"
        ),
        list(
            "id, school_unit_code, duty_role, start_date, end_date, assignments",
            "FROM duties WHERE person_id = $1",
            "id"
        ),
        list(
            "g.id, g.name, g.school_unit_code, g.kind, m.start_date, m.end_date",
            "FROM school_groups g JOIN group_members m ON m.group_id = g.id WHERE m.person_id = $1",
            "g.name"
        ),
        relatives("student_id", "guardian_id"),
        relatives("guardian_id", "student_id"),
    )
}

fn parse_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| super::StorageError::Corrupt(e.to_string()))
}

fn text_dates(start: Option<String>, end: Option<String>) -> Dates {
    Dates::new(
        start.as_deref().and_then(parse_date),
        end.as_deref().and_then(parse_date),
    )
}

/// The groups named by `ids`, in that order (an id named twice comes twice; an unknown one
/// is left out), in one read.
async fn groups_in_order(db: &Db, ids: &[String]) -> Result<Vec<GroupRef>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut unique: Vec<&str> = ids.iter().map(String::as_str).collect();
    unique.sort_unstable();
    unique.dedup();
    let mut found = std::collections::HashMap::new();
    for chunk in unique.chunks(super::IN_LIST) {
        let sql = format!(
            "SELECT id, name, school_unit_code, kind FROM school_groups WHERE id IN ({})",
            super::in_list(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(db.pool()).await? {
            let g = group_from_row(&r)?;
            found.insert(g.id.clone(), g);
        }
    }
    Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
}

/// A duty's assignment as stored in `duties.assignments`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq, Hash)]
pub struct StoredAssignment {
    pub group: String,
    pub kind: String,
    pub start: Option<String>,
    pub end: Option<String>,
}

/// A person by username, register id or civic number (`person show KEY`); `civic` is the
/// key parsed as a civic number, when it is one.
pub async fn by_key(db: &Db, key: &str, civic: Option<&CivicNo>) -> Result<Vec<Person>> {
    let civic = civic.map(|c| c.as_str().to_string()).unwrap_or_default();
    let sql = concat!(
        "SELECT ",
        person_columns!(),
        " FROM persons WHERE username = $1 OR eppn = $2 OR external_id = $2 OR id = $2 \
         OR (civic_no = $3 AND $3 <> '') ORDER BY username"
    );
    let rows = sqlx::query(sql)
        .bind(key.to_lowercase())
        .bind(key)
        .bind(civic)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(person_from_row).collect()
}

pub async fn school_unit(db: &Db, code: &str) -> Result<Option<String>> {
    school_unit_on(db.pool(), code).await
}

/// `school_unit` in the caller's transaction: a second connection from the pool while the
/// transaction holds one could wait for ever when every connection is such a transaction.
pub async fn school_unit_in(tx: &mut super::Tx, code: &str) -> Result<Option<String>> {
    school_unit_on(tx.conn(), code).await
}

async fn school_unit_on<'e>(
    ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    code: &str,
) -> Result<Option<String>> {
    let row = sqlx::query("SELECT name FROM school_units WHERE code = $1")
        .bind(code)
        .fetch_optional(ex)
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

/// `set_password_hash` in the caller's transaction (an admin's reset with its audit event).
pub async fn set_password_hash_in(
    tx: &mut super::Tx,
    person_id: &str,
    hash: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO credentials (person_id, password_hash, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (person_id) DO UPDATE SET password_hash = excluded.password_hash, \
         updated_at = excluded.updated_at",
    )
    .bind(person_id)
    .bind(hash)
    .bind(now)
    .execute(tx.conn())
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

/// Active people with this civic number (a BankID login needs exactly one).
pub async fn active_ids_by_civic(db: &Db, civic: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM persons WHERE civic_no = $1 AND status = 'active'")
        .bind(civic)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("id")?))
        .collect()
}

/// People whose `field` (username, email, eppn, civic_no, external_id) equals `value`, at
/// most `limit` (a federation link needs exactly one). Usernames, email addresses and eppns
/// compare case-insensitively; a civic number is given in its stored form.
pub async fn by_field(db: &Db, field: &str, value: &str, limit: i64) -> Result<Vec<Person>> {
    let condition = match field {
        "username" => "username = lower($1)",
        "email" => "lower(email) = lower($1)",
        "eppn" => "lower(eppn) = lower($1)",
        "civic_no" => "civic_no = $1",
        "external_id" => "external_id = $1",
        other => {
            return Err(super::StorageError::Corrupt(format!(
                "no person field {other}"
            )));
        }
    };
    let sql = format!(
        "SELECT {} FROM persons WHERE {condition} ORDER BY id LIMIT $2",
        person_columns!()
    );
    // The condition is one of the fixed strings above.
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(person_from_row).collect()
}

/// (id, name) of a school unit's classes (groups of kind `class`), by name.
pub async fn classes(db: &Db, unit: &str) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT id, name FROM school_groups WHERE school_unit_code = $1 AND kind = 'class' \
         ORDER BY name, id",
    )
    .bind(unit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
        .collect()
}

/// The active people who may be pupils of a school unit (a local student role at the unit,
/// or an enrolment there), and with `group` only members of that group; protected
/// identities only when `include_protected`. Candidates: whether the enrolment and the
/// membership count today is the directory's rule (`directory::roles::current`), applied
/// by the caller to each person's facts.
pub async fn pupil_candidates(
    db: &Db,
    unit: &str,
    group: Option<&str>,
    include_protected: bool,
) -> Result<Vec<Person>> {
    let sql = concat!(
        "SELECT ",
        person_columns!(),
        " FROM persons WHERE status = 'active' AND (protected_identity = 0 OR $1 = 1) \
         AND (EXISTS (SELECT 1 FROM person_roles r WHERE r.person_id = persons.id \
                      AND r.role = 'student' AND r.school_unit_code = $2) \
              OR EXISTS (SELECT 1 FROM enrolments e WHERE e.person_id = persons.id \
                         AND e.school_unit_code = $2)) \
         AND ($3 = '' OR EXISTS (SELECT 1 FROM group_members m WHERE m.person_id = persons.id \
                                 AND m.group_id = $3)) \
         ORDER BY family_name, given_name, username"
    );
    let rows = sqlx::query(sql)
        .bind(i64::from(include_protected))
        .bind(unit)
        .bind(group.unwrap_or_default())
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(person_from_row).collect()
}
