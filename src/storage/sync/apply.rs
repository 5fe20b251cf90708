//! Writing a plan: on one connection, chunk by chunk, each chunk in one transaction; and
//! purging people deactivated longer than the retention period.

use super::rows::{DutyRow, EnrolmentRow, GroupRow, OrgRow, PersonRow, StatusChange};
use super::{rows_per_statement, values_sql};
use crate::storage::{Db, IN_LIST, Result, begin_on, in_list, sessions, tokens};
use sqlx::AnyConnection;
use sqlx::{Any, Executor, Row, Transaction};

/// The one connection a plan is applied on. On SQLite it gets a 256 MB page cache while it
/// works: a first run inserts into indexes on random keys (uuid, eppn) that outgrow the
/// normal 32 MB, and every miss is a read from the OS.
///
/// A connection dropped without [`ApplyConnection::release`] (a run stopped by a signal or a
/// lost lease, perhaps inside a chunk's transaction) is closed rather than returned to the
/// pool: closing rolls the open transaction back and frees the big cache.
pub struct ApplyConnection {
    conn: sqlx::pool::PoolConnection<Any>,
    sqlite: bool,
    released: bool,
}

impl Drop for ApplyConnection {
    fn drop(&mut self) {
        if !self.released {
            self.conn.close_on_drop();
        }
    }
}

impl ApplyConnection {
    pub async fn acquire(db: &Db) -> Result<Self> {
        let mut conn = db.writer().acquire().await?;
        let sqlite = db.backend() == crate::storage::Backend::Sqlite;
        if sqlite {
            conn.execute("PRAGMA cache_size = -262144").await?;
        }
        Ok(Self {
            conn,
            sqlite,
            released: false,
        })
    }

    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// Back to the pool with the normal cache (the big one is freed).
    pub async fn release(mut self) -> Result<()> {
        if self.sqlite {
            self.conn.execute("PRAGMA cache_size = -32768").await?;
        }
        self.released = true;
        Ok(())
    }
}

/// Deletes rows of `table` by id, only those `source` owns.
async fn delete_owned(
    tx: &mut Transaction<'_, Any>,
    table: &'static str,
    source: &str,
    ids: &[String],
) -> Result<()> {
    for chunk in ids.chunks(IN_LIST) {
        let sql = format!(
            "DELETE FROM {table} WHERE source = $1 AND id IN ({})",
            in_list(2, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(source);
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Organisations, and the school units among them.
pub async fn apply_organisations(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[OrgRow],
    remove: &[String],
) -> Result<()> {
    let mut tx = begin_on(conn).await?;
    for o in rows {
        sqlx::query(
            "INSERT INTO organisations (id, source, kind, name, parent_id, school_unit_code, \
             organisation_number, sync_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
             parent_id = excluded.parent_id, school_unit_code = excluded.school_unit_code, \
             organisation_number = excluded.organisation_number, sync_hash = excluded.sync_hash",
        )
        .bind(&o.id)
        .bind(source)
        .bind(&o.kind)
        .bind(&o.name)
        .bind(&o.parent_id)
        .bind(&o.school_unit_code)
        .bind(&o.organisation_number)
        .bind(&o.hash)
        .execute(&mut *tx)
        .await?;
        if let Some(code) = &o.school_unit_code {
            sqlx::query(
                "INSERT INTO school_units (code, name, source, external_id, huvudman, school_types) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code) DO UPDATE SET \
                 name = excluded.name, source = excluded.source, external_id = excluded.external_id, \
                 huvudman = excluded.huvudman, school_types = excluded.school_types",
            )
            .bind(code)
            .bind(&o.name)
            .bind(source)
            .bind(&o.id)
            .bind(&o.huvudman)
            .bind(crate::storage::json_list(&o.school_types))
            .execute(&mut *tx)
            .await?;
        }
    }
    // A removed unit's row stays in school_units: old groups and records may name it.
    delete_owned(&mut tx, "organisations", source, remove).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends the SSO sessions and revokes the refresh tokens of people just deactivated (their
/// access tokens stop working at userinfo and introspection, which check the person), in
/// the chunk's transaction.
async fn revoke(conn: &mut AnyConnection, ids: &[&str], now: i64) -> Result<()> {
    sessions::end_for_persons(&mut *conn, ids, now).await?;
    tokens::revoke_for_persons(conn, ids).await
}

fn status_str(active: bool) -> &'static str {
    if active { "active" } else { "deactivated" }
}

/// One chunk of people: new rows, changed rows, and their enrolments. Guardianships come in
/// a second pass ([`apply_guardianships`]) once every person of the plan exists; the rows
/// are written without their `sync_hash`, which that pass sets with the guardianships: a
/// run stopped between the passes leaves these people to be written again by the next run,
/// never marked unchanged without their guardianships.
/// `search_names[i]` is the search key of `rows[i]` (`directory::ident::search_name`).
/// `rebound` are the people of this chunk whose civic number changes: their sessions and
/// refresh tokens end and an audit event (naming the person, not the number) is written in
/// the same transaction as the change.
pub async fn apply_persons(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[PersonRow],
    search_names: &[String],
    rebound: &[&str],
    now: i64,
) -> Result<()> {
    debug_assert_eq!(rows.len(), search_names.len());
    let mut tx = begin_on(conn).await?;
    let creates: Vec<(&PersonRow, &String)> = rows
        .iter()
        .zip(search_names)
        .filter(|(r, _)| r.create.is_some())
        .collect();
    for batch in creates.chunks(rows_per_statement(20)) {
        let sql = values_sql(
            "INSERT INTO persons (id, username, eppn, given_name, family_name, email, civic_no, \
             protected_identity, status, source, external_id, created_at, updated_at, \
             search_name, emails, security_marking, deactivated_at, active_from, active_until, \
             sync_hash)",
            20,
            batch.len(),
            "ON CONFLICT (id) DO NOTHING",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (r, search_name) in batch {
            let ident = r.create.as_ref();
            q = q
                .bind(&r.id)
                .bind(ident.map(|i| i.username.clone()))
                .bind(ident.map(|i| i.eppn.clone()))
                .bind(&r.given_name)
                .bind(&r.family_name)
                .bind(&r.email)
                .bind(&r.civic_no)
                .bind(i64::from(r.protected_identity))
                .bind(status_str(r.status.active))
                .bind(source)
                .bind(&r.external_id)
                .bind(now)
                .bind(now)
                .bind(*search_name)
                .bind(emails_json(&r.emails))
                .bind(&r.security_marking)
                .bind((!r.status.active).then_some(now))
                .bind(&r.status.from)
                .bind(&r.status.until)
                .bind(None::<String>);
        }
        q.execute(&mut *tx).await?;
    }
    for (r, search_name) in rows
        .iter()
        .zip(search_names)
        .filter(|(r, _)| r.create.is_none())
    {
        sqlx::query(
            "UPDATE persons SET given_name = $2, family_name = $3, email = $4, civic_no = $5, \
             protected_identity = $6, status = $7, updated_at = $8, search_name = $9, \
             emails = $10, security_marking = $11, active_from = $12, active_until = $13, \
             sync_hash = $14, deactivated_at = CASE WHEN $7 = 'active' THEN NULL \
             ELSE COALESCE(deactivated_at, $8) END WHERE id = $1 AND source = $15",
        )
        .bind(&r.id)
        .bind(&r.given_name)
        .bind(&r.family_name)
        .bind(&r.email)
        .bind(&r.civic_no)
        .bind(i64::from(r.protected_identity))
        .bind(status_str(r.status.active))
        .bind(now)
        .bind(search_name)
        .bind(emails_json(&r.emails))
        .bind(&r.security_marking)
        .bind(&r.status.from)
        .bind(&r.status.until)
        .bind(None::<String>)
        .bind(source)
        .execute(&mut *tx)
        .await?;
    }
    let updated: Vec<String> = rows
        .iter()
        .filter(|r| r.create.is_none())
        .map(|r| r.id.clone())
        .collect();
    for chunk in updated.chunks(IN_LIST) {
        let sql = format!(
            "DELETE FROM enrolments WHERE person_id IN ({})",
            in_list(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *tx).await?;
    }
    let enrolments: Vec<(&str, i64, &EnrolmentRow)> = rows
        .iter()
        .flat_map(|r| {
            r.enrolments
                .iter()
                .enumerate()
                .map(move |(i, e)| (r.id.as_str(), i as i64, e))
        })
        .collect();
    for batch in enrolments.chunks(rows_per_statement(7)) {
        let sql = values_sql(
            "INSERT INTO enrolments (person_id, seq, school_unit_code, school_type, school_year, \
             start_date, end_date)",
            7,
            batch.len(),
            "",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, seq, e) in batch {
            q = q
                .bind(*id)
                .bind(*seq)
                .bind(&e.unit)
                .bind(&e.school_type)
                .bind(e.school_year.map(i64::from))
                .bind(&e.start)
                .bind(&e.end);
        }
        q.execute(&mut *tx).await?;
    }
    // Revoking for someone already inactive finds nothing to end: no need to know who was.
    let ids: Vec<&str> = rows
        .iter()
        .filter(|r| r.create.is_none() && !r.status.active)
        .map(|r| r.id.as_str())
        .collect();
    revoke(&mut tx, &ids, now).await?;
    if !rebound.is_empty() {
        revoke(&mut tx, rebound, now).await?;
        let actor = format!("sync:{source}");
        for id in rebound {
            crate::storage::records::audit_on(&mut tx, "person.civic_no_changed", &actor, id, now)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

fn emails_json(emails: &[(String, String)]) -> String {
    let v: Vec<serde_json::Value> = emails
        .iter()
        .map(|(value, kind)| serde_json::json!({ "value": value, "kind": kind }))
        .collect();
    serde_json::Value::Array(v).to_string()
}

/// The guardianships named by a chunk of children, replacing what they named before, and
/// the chunk's `sync_hash`es (the mark that a person is written completely).
pub async fn apply_guardianships(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[PersonRow],
) -> Result<()> {
    let mut tx = begin_on(conn).await?;
    let updated: Vec<&str> = rows
        .iter()
        .filter(|r| r.create.is_none())
        .map(|r| r.id.as_str())
        .collect();
    for chunk in updated.chunks(IN_LIST) {
        let sql = format!(
            "DELETE FROM guardianships WHERE source = $1 AND student_id IN ({})",
            in_list(2, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(source);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *tx).await?;
    }
    let links: Vec<(&str, &str, &str)> = rows
        .iter()
        .flat_map(|r| {
            r.guardians
                .iter()
                .map(move |(g, rel)| (g.as_str(), r.id.as_str(), rel.as_str()))
        })
        .collect();
    for batch in links.chunks(rows_per_statement(4)) {
        let sql = values_sql(
            "INSERT INTO guardianships (guardian_id, student_id, relation_type, source)",
            4,
            batch.len(),
            "ON CONFLICT DO NOTHING",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (g, s, rel) in batch {
            q = q.bind(*g).bind(*s).bind(*rel).bind(source);
        }
        q.execute(&mut *tx).await?;
    }
    // `columnN` names a VALUES list's columns on both engines.
    for batch in rows.chunks(rows_per_statement(2)) {
        let sql = values_sql(
            "UPDATE persons SET sync_hash = v.column2 FROM (",
            2,
            batch.len(),
            ") AS v WHERE persons.id = v.column1",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in batch {
            q = q.bind(&r.id).bind(&r.hash);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn apply_groups(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[GroupRow],
    remove: &[String],
) -> Result<()> {
    let mut tx = begin_on(conn).await?;
    for g in rows {
        sqlx::query(
            "INSERT INTO school_groups (id, school_unit_code, name, kind, source, school_type, \
             start_date, end_date, sync_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET school_unit_code = excluded.school_unit_code, \
             name = excluded.name, kind = excluded.kind, school_type = excluded.school_type, \
             start_date = excluded.start_date, end_date = excluded.end_date, \
             sync_hash = excluded.sync_hash",
        )
        .bind(&g.id)
        .bind(&g.unit)
        .bind(&g.name)
        .bind(&g.kind)
        .bind(source)
        .bind(&g.school_type)
        .bind(&g.start)
        .bind(&g.end)
        .bind(&g.hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(&g.id)
            .execute(&mut *tx)
            .await?;
        for batch in g.members.chunks(rows_per_statement(4)) {
            let sql = values_sql(
                "INSERT INTO group_members (group_id, person_id, start_date, end_date)",
                4,
                batch.len(),
                "ON CONFLICT DO NOTHING",
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (p, s, e) in batch {
                q = q.bind(&g.id).bind(p).bind(s).bind(e);
            }
            q.execute(&mut *tx).await?;
        }
    }
    delete_owned(&mut tx, "school_groups", source, remove).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn apply_duties(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[DutyRow],
    remove: &[String],
) -> Result<()> {
    let mut tx = begin_on(conn).await?;
    for batch in rows.chunks(rows_per_statement(9)) {
        let sql = values_sql(
            "INSERT INTO duties (id, source, person_id, school_unit_code, duty_role, start_date, \
             end_date, assignments, sync_hash)",
            9,
            batch.len(),
            "ON CONFLICT (id) DO UPDATE SET person_id = excluded.person_id, \
             school_unit_code = excluded.school_unit_code, duty_role = excluded.duty_role, \
             start_date = excluded.start_date, end_date = excluded.end_date, \
             assignments = excluded.assignments, sync_hash = excluded.sync_hash",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for d in batch {
            q = q
                .bind(&d.id)
                .bind(source)
                .bind(&d.person_id)
                .bind(&d.unit)
                .bind(&d.duty_role)
                .bind(&d.start)
                .bind(&d.end)
                .bind(serde_json::to_string(&d.assignments).unwrap_or_else(|_| "[]".into()))
                .bind(&d.hash);
        }
        q.execute(&mut *tx).await?;
    }
    delete_owned(&mut tx, "duties", source, remove).await?;
    tx.commit().await?;
    Ok(())
}

/// Status changes of one chunk; the people it deactivates have their sessions ended and
/// tokens revoked in the same transaction.
pub async fn apply_status(
    conn: &mut AnyConnection,
    source: &str,
    changes: &[StatusChange],
    now: i64,
) -> Result<()> {
    let mut tx = begin_on(conn).await?;
    let mut deactivated = Vec::new();
    for c in changes {
        let old: Option<String> =
            sqlx::query("SELECT status FROM persons WHERE id = $1 AND source = $2")
                .bind(&c.person_id)
                .bind(source)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("status"))
                .transpose()?;
        let Some(old) = old else { continue };
        // A person who left the register keeps no hash, so coming back rewrites everything.
        let left = c.reason == "left the register";
        sqlx::query(
            "UPDATE persons SET status = $2, active_from = $3, active_until = $4, updated_at = $5, \
             deactivated_at = CASE WHEN $2 = 'active' THEN NULL ELSE COALESCE(deactivated_at, $5) END, \
             sync_hash = CASE WHEN $7 = 1 THEN NULL ELSE sync_hash END \
             WHERE id = $1 AND source = $6",
        )
        .bind(&c.person_id)
        .bind(status_str(c.status.active))
        .bind(&c.status.from)
        .bind(&c.status.until)
        .bind(now)
        .bind(source)
        .bind(i64::from(left))
        .execute(&mut *tx)
        .await?;
        if old == "active" && !c.status.active {
            deactivated.push(c.person_id.clone());
        }
    }
    let ids: Vec<&str> = deactivated.iter().map(String::as_str).collect();
    revoke(&mut tx, &ids, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes people of `source` deactivated before `before`; their usernames and eppns stay
/// as tombstones so they are never given to anyone else. Returns how many were purged.
pub async fn purge(db: &Db, source: &str, before: i64, now: i64) -> Result<u64> {
    let rows = sqlx::query(
        "SELECT id, username, eppn FROM persons WHERE source = $1 AND status = 'deactivated' \
         AND deactivated_at IS NOT NULL AND deactivated_at < $2",
    )
    .bind(source)
    .bind(before)
    .fetch_all(db.pool())
    .await?;
    let mut n = 0;
    let mut conn = db.writer().acquire().await?;
    for chunk in rows.chunks(IN_LIST) {
        let mut tx = begin_on(&mut conn).await?;
        for r in chunk {
            let id: String = r.try_get("id")?;
            for (kind, col) in [("username", "username"), ("eppn", "eppn")] {
                sqlx::query(
                    "INSERT INTO identifier_tombstones (kind, value, purged_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(kind)
                .bind(r.try_get::<String, _>(col)?)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM persons WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        tx.commit().await?;
    }
    Ok(n)
}
