//! Federation: upstream OpenID providers, linking to people of the directory, the
//! `upstream` commands.

mod cli;
mod interop;
mod linking;
mod oidc;

use crate::helpers::*;
use portvakt::directory::{self, NewPerson};

/// Runs one statement on the app's database (for states no command makes, such as a
/// deactivated person).
pub async fn sql(app: &TestApp, statement: &str, binds: &[&str]) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.config.database_url)
        .await
        .unwrap();
    let mut q = sqlx::query(sqlx::AssertSqlSafe(statement.to_string()));
    for b in binds {
        q = q.bind(b.to_string());
    }
    q.execute(&pool).await.unwrap();
    pool.close().await;
}

/// A person with this email address and the test password.
pub async fn person_with_email(app: &TestApp, username: &str, email: &str) -> directory::Person {
    let new = NewPerson {
        username: username.into(),
        given_name: "Test".into(),
        family_name: username.into(),
        email: Some(email.into()),
        civic_no: None,
        protected_identity: false,
        roles: vec![],
        source: "local".into(),
    };
    let p = directory::add_person(&app.db, &new, "test.example", app.clock.now())
        .await
        .unwrap();
    app.state
        .authn
        .set_password(&p.id, PASSWORD.into(), app.clock.now())
        .await
        .unwrap();
    p
}

/// The newest audit event of `kind`: (actor, detail).
pub async fn last_audit(app: &TestApp, kind: &str) -> Option<String> {
    portvakt::storage::records::last_audit(&app.db, kind, "")
        .await
        .unwrap()
        .map(|(_, d)| d)
}
