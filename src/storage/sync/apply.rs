//! Writing a plan: on one connection, chunk by chunk, each chunk in one transaction; and
//! purging people deactivated longer than the retention period.

use super::rows::{DutyRow, EnrolmentRow, GroupRow, OrgRow, PersonRow, StatusChange};
use super::{begin_chunk, is_sqlite, rows_per_statement, values_sql};
use crate::storage::{Db, IN_LIST, Result, in_list, sessions, tokens};
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
    // Nothing to write: no transaction (a small push or incremental run has many such).
    if rows.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let mut tx = begin_chunk(conn).await?;
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
    let mut tx = begin_chunk(conn).await?;
    let creates: Vec<(&PersonRow, &String)> = rows
        .iter()
        .zip(search_names)
        .filter(|(r, _)| r.create.is_some())
        .collect();
    let per = rows_per_statement(&tx, 20);
    for batch in creates.chunks(per) {
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
                .bind(complete_at_insert(r).then_some(&r.hash));
        }
        q.execute(&mut *tx).await?;
    }
    let updates: Vec<(&PersonRow, &String)> = rows
        .iter()
        .zip(search_names)
        .filter(|(r, _)| r.create.is_none())
        .collect();
    // One statement per batch of changed people (a round trip each on PostgreSQL); the
    // hash stays NULL until their guardianships are written. `columnN` names a VALUES
    // list's columns on both engines.
    for batch in updates.chunks(rows_per_statement(&tx, 13)) {
        let source_param = batch.len() * 13 + 1;
        let sql = values_sql(
            "UPDATE persons SET given_name = v.column2, family_name = v.column3, \
             email = v.column4, civic_no = v.column5, protected_identity = v.column6, \
             status = v.column7, updated_at = v.column8, search_name = v.column9, \
             emails = v.column10, security_marking = v.column11, active_from = v.column12, \
             active_until = v.column13, sync_hash = NULL, deactivated_at = CASE \
             WHEN v.column7 = 'active' THEN NULL \
             ELSE COALESCE(persons.deactivated_at, v.column8) END FROM (",
            13,
            batch.len(),
            &format!(") AS v WHERE persons.id = v.column1 AND persons.source = ${source_param}"),
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (r, search_name) in batch {
            q = q
                .bind(&r.id)
                .bind(&r.given_name)
                .bind(&r.family_name)
                .bind(&r.email)
                .bind(&r.civic_no)
                .bind(i64::from(r.protected_identity))
                .bind(status_str(r.status.active))
                .bind(now)
                .bind(*search_name)
                .bind(emails_json(&r.emails))
                .bind(&r.security_marking)
                .bind(&r.status.from)
                .bind(&r.status.until);
        }
        q.bind(source).execute(&mut *tx).await?;
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
    for batch in enrolments.chunks(rows_per_statement(&tx, 7)) {
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

/// A new person who names no guardians is complete with its row: the second pass would
/// only set its hash (it has no guardianships to replace), so the insert sets it and the
/// pass skips it (on PostgreSQL that update rewrote every new row).
fn complete_at_insert(r: &PersonRow) -> bool {
    r.create.is_some() && r.guardians.is_empty()
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
    let mut tx = begin_chunk(conn).await?;
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
    for batch in links.chunks(rows_per_statement(&tx, 4)) {
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
    // People created without guardians got their hash with the row.
    let hashed: Vec<&PersonRow> = rows.iter().filter(|r| !complete_at_insert(r)).collect();
    for batch in hashed.chunks(rows_per_statement(&tx, 2)) {
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

/// (person's internal id, start, end) of a group membership.
type Member = (String, Option<String>, Option<String>);

pub async fn apply_groups(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[GroupRow],
    remove: &[String],
) -> Result<()> {
    // Nothing to write: no transaction (a small push or incremental run has many such).
    if rows.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let mut tx = begin_chunk(conn).await?;
    // Multi-row statements for the groups, their old members and their new members: one
    // statement per group and member list was a round trip each on PostgreSQL.
    for batch in rows.chunks(rows_per_statement(&tx, 9)) {
        let sql = values_sql(
            "INSERT INTO school_groups (id, school_unit_code, name, kind, source, school_type, \
             start_date, end_date, sync_hash)",
            9,
            batch.len(),
            "ON CONFLICT (id) DO UPDATE SET school_unit_code = excluded.school_unit_code, \
             name = excluded.name, kind = excluded.kind, school_type = excluded.school_type, \
             start_date = excluded.start_date, end_date = excluded.end_date, \
             sync_hash = excluded.sync_hash",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for g in batch {
            q = q
                .bind(&g.id)
                .bind(&g.unit)
                .bind(&g.name)
                .bind(&g.kind)
                .bind(source)
                .bind(&g.school_type)
                .bind(&g.start)
                .bind(&g.end)
                .bind(&g.hash);
        }
        q.execute(&mut *tx).await?;
    }
    for chunk in rows.chunks(IN_LIST) {
        let sql = format!(
            "DELETE FROM group_members WHERE group_id IN ({})",
            in_list(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for g in chunk {
            q = q.bind(&g.id);
        }
        q.execute(&mut *tx).await?;
    }
    let members: Vec<(&str, &Member)> = rows
        .iter()
        .flat_map(|g| g.members.iter().map(move |m| (g.id.as_str(), m)))
        .collect();
    for batch in members.chunks(rows_per_statement(&tx, 4)) {
        let sql = values_sql(
            "INSERT INTO group_members (group_id, person_id, start_date, end_date)",
            4,
            batch.len(),
            "ON CONFLICT DO NOTHING",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (g, (p, s, e)) in batch {
            q = q.bind(*g).bind(p).bind(s).bind(e);
        }
        q.execute(&mut *tx).await?;
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
    // Nothing to write: no transaction (a small push or incremental run has many such).
    if rows.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let mut tx = begin_chunk(conn).await?;
    for batch in rows.chunks(rows_per_statement(&tx, 9)) {
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
    let mut tx = begin_chunk(conn).await?;
    // Who was active: only people of this source are changed. The source is compared
    // here, not in SQL: with `source = $1` SQLite walked the whole (source, external_id)
    // index instead of looking the ids up (2.2 s at 500,000).
    let mut was_active: std::collections::HashMap<String, bool> = Default::default();
    for chunk in changes.chunks(IN_LIST) {
        let sql = format!(
            "SELECT id, status, source FROM persons WHERE id IN ({})",
            in_list(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in chunk {
            q = q.bind(&c.person_id);
        }
        for r in q.fetch_all(&mut *tx).await? {
            if r.try_get::<String, _>("source")? == source {
                was_active.insert(
                    r.try_get("id")?,
                    r.try_get::<String, _>("status")? == "active",
                );
            }
        }
    }
    let known: Vec<&StatusChange> = changes
        .iter()
        .filter(|c| was_active.contains_key(&c.person_id))
        .collect();
    for batch in known.chunks(rows_per_statement(&tx, 5)) {
        let n = batch.len() * 5;
        // A person who left the register keeps no hash, so coming back rewrites everything.
        let sql = values_sql(
            "UPDATE persons SET status = v.column2, active_from = v.column3, \
             active_until = v.column4, updated_at = $NOW, deactivated_at = CASE \
             WHEN v.column2 = 'active' THEN NULL ELSE COALESCE(persons.deactivated_at, $NOW) END, \
             sync_hash = CASE WHEN v.column5 = 1 THEN NULL ELSE persons.sync_hash END FROM (",
            5,
            batch.len(),
            &format!(
                ") AS v WHERE persons.id = v.column1 AND persons.source = ${}",
                n + 2
            ),
        )
        .replace("$NOW", &format!("${}", n + 1));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in batch {
            q = q
                .bind(&c.person_id)
                .bind(status_str(c.status.active))
                .bind(&c.status.from)
                .bind(&c.status.until)
                .bind(i64::from(c.reason == "left the register"));
        }
        q.bind(now).bind(source).execute(&mut *tx).await?;
    }
    let ids: Vec<&str> = known
        .iter()
        .filter(|c| was_active[&c.person_id] && !c.status.active)
        .map(|c| c.person_id.as_str())
        .collect();
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
        let mut tx = begin_chunk(&mut conn).await?;
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

/// Secondary indexes on random keys that a large first run builds after its bulk load on
/// SQLite, instead of inserting 500,000 keys one by one (each commit of a chunk rewrote the
/// index pages it touched, through the WAL). The statements are those of the migrations.
/// The UNIQUE constraints of the table itself (username, eppn, id) are not droppable and
/// stay; so does everything a login reads.
pub const DEFERRABLE_PERSON_INDEXES: [(&str, &str); 2] = [
    (
        "persons_source_external",
        "CREATE UNIQUE INDEX IF NOT EXISTS persons_source_external ON persons (source, external_id)",
    ),
    (
        "persons_civic",
        "CREATE INDEX IF NOT EXISTS persons_civic ON persons (civic_no)",
    ),
];
pub const DEFERRABLE_GROUP_INDEXES: [(&str, &str); 1] = [(
    "group_members_person",
    "CREATE INDEX IF NOT EXISTS group_members_person ON group_members (person_id)",
)];

/// Drops `indexes` (SQLite only; a no-op elsewhere) until [`build_indexes`] makes them again.
pub async fn defer_indexes(conn: &mut AnyConnection, indexes: &[(&str, &str)]) -> Result<()> {
    if !is_sqlite(conn) {
        return Ok(());
    }
    let mut tx = begin_chunk(conn).await?;
    for (name, _) in indexes {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS {name}")))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Makes those of `indexes` that are missing (SQLite only): after a first run's bulk load,
/// and at the start of every run, for a run stopped before it got there.
pub async fn build_indexes(conn: &mut AnyConnection, indexes: &[(&str, &str)]) -> Result<()> {
    if !is_sqlite(conn) {
        return Ok(());
    }
    for (_, create) in indexes {
        let mut tx = begin_chunk(conn).await?;
        sqlx::query(sqlx::AssertSqlSafe(create.to_string()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Refreshes PostgreSQL's statistics of the directory's tables (SQLite: nothing). After a
/// large apply, the next statements would otherwise be planned without them until
/// autovacuum's analyze comes round: a first run's follow-up looked up enrolments by a
/// sequential scan, 21.6 ms a statement instead of 2.4 ms (docs/benchmarks.md, issue 16).
/// About 0.8 s at 500,000 people.
pub async fn refresh_statistics(conn: &mut AnyConnection) -> Result<()> {
    if is_sqlite(conn) {
        return Ok(());
    }
    sqlx::query("ANALYZE persons, enrolments, guardianships, duties, school_groups, group_members")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// [`build_indexes`] for every deferrable index, on a writer connection of `db`.
pub async fn ensure_deferred_indexes(db: &Db) -> Result<()> {
    if db.backend() != crate::storage::Backend::Sqlite {
        return Ok(());
    }
    let mut conn = db.writer().acquire().await?;
    // Only when one is missing: the check reads the schema, a write lock is not needed.
    let missing: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT 'persons_source_external' AS name \
         UNION ALL SELECT 'persons_civic' UNION ALL SELECT 'group_members_person') AS want \
         WHERE want.name NOT IN (SELECT name FROM sqlite_master WHERE type = 'index')",
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    if missing > 0 {
        build_indexes(&mut conn, &DEFERRABLE_PERSON_INDEXES).await?;
        build_indexes(&mut conn, &DEFERRABLE_GROUP_INDEXES).await?;
    }
    Ok(())
}
