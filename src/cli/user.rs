//! `user`, `school-unit` and `person`: local people and school units, and looking people
//! up in the directory.

use super::{audit, read_stdin_secret};
use crate::app::open_db;
use crate::authn::password::PasswordHasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::directory::{self, CivicNo, NewPerson, Role};
use crate::storage;
use anyhow::bail;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a local person; the password is read from standard input.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        given_name: Option<String>,
        #[arg(long)]
        family_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// YYYYMMDD-NNNN
        #[arg(long)]
        civic_no: Option<String>,
        /// ROLE or ROLE@SCHOOL_UNIT_CODE (student, teacher, staff, guardian, principal, admin,
        /// admin-readonly, admin-protected).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List people, or search by name (case- and å/ä/ö-insensitive). People with a
    /// protected identity are left out unless --include-protected (every one shown is
    /// audited).
    List {
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        include_protected: bool,
        #[arg(long, default_value_t = 200)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Set a person's password, read from standard input.
    SetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SchoolUnitCommand {
    /// Add a school unit, or rename one.
    Add {
        /// The school unit code (skolenhetskod), e.g. 12345678.
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PersonCommand {
    /// A person with roles, groups, guardianships and the derived release attributes.
    /// KEY: username, eppn, SS 12000 id or civic number.
    Show {
        key: String,
        #[arg(long)]
        json: bool,
    },
}

fn hasher(config: &Config) -> anyhow::Result<PasswordHasher> {
    let p = &config.password;
    Ok(PasswordHasher::new(
        p.memory_kib,
        p.iterations,
        p.parallelism,
        1,
        1,
    )?)
}

pub(super) async fn user(config: Config, cmd: UserCommand) -> anyhow::Result<()> {
    let db = open_db(&config).await?;
    let now = Clock::system().now();
    match cmd {
        UserCommand::Add {
            username,
            password_stdin,
            given_name,
            family_name,
            email,
            civic_no,
            roles,
        } => {
            let roles = roles
                .iter()
                .map(|r| Role::parse(r))
                .collect::<Result<Vec<_>, _>>()?;
            let civic_no = civic_no.as_deref().map(CivicNo::parse).transpose()?;
            let password = if password_stdin {
                Some(read_stdin_secret("password")?)
            } else {
                None
            };
            let new = NewPerson {
                username,
                given_name: given_name.unwrap_or_default(),
                family_name: family_name.unwrap_or_default(),
                email,
                civic_no,
                protected_identity: false,
                roles,
                source: "local".into(),
            };
            // `[saml] scope`, else the issuer's host: the scope the demo and the sync use.
            let scope = config.saml_scope();
            let person = directory::add_person(&db, &new, &scope, now).await?;
            if let Some(pw) = password {
                let hash = hasher(&config)?.hash(pw).await?;
                storage::persons::set_password_hash(&db, &person.id, &hash, now).await?;
            }
            audit(&db, "user.add", &person.id, now).await?;
            println!("added {} (eppn {})", person.username, person.eppn);
        }
        UserCommand::List {
            search,
            include_protected,
            limit,
            json,
        } => {
            let mut rows = Vec::new();
            let found = directory::search(
                &db,
                search.as_deref().unwrap_or_default(),
                include_protected,
                limit,
            )
            .await?;
            for p in found {
                if p.protected_identity {
                    audit(&db, "person.view_protected", &p.id, now).await?;
                }
                let d =
                    directory::details(&db, &config.directory, p, directory::roles::day_of(now))
                        .await?;
                rows.push(d);
            }
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "id": d.person.id, "username": d.person.username, "eppn": d.person.eppn,
                            "given_name": d.person.given_name, "family_name": d.person.family_name,
                            "email": d.person.email, "active": d.person.active, "source": d.person.source,
                            "roles": d.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for d in rows {
                    let roles: Vec<String> = d.roles.iter().map(|r| r.to_string()).collect();
                    println!(
                        "{:<20} {:<24} {}",
                        d.person.username,
                        d.person.display_name(),
                        roles.join(" ")
                    );
                }
            }
        }
        UserCommand::SetPassword {
            username,
            password_stdin,
        } => {
            if !password_stdin {
                bail!("give the new password on standard input with --password-stdin");
            }
            let person = storage::persons::by_login_name(&db, &username)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no such user: {username}"))?;
            let pw = read_stdin_secret("password")?;
            let hash = hasher(&config)?.hash(pw).await?;
            storage::persons::set_password_hash(&db, &person.id, &hash, now).await?;
            audit(&db, "user.set_password", &person.id, now).await?;
            println!("password set for {}", person.username);
        }
    }
    Ok(())
}

pub(super) async fn school_unit(config: Config, cmd: SchoolUnitCommand) -> anyhow::Result<()> {
    let now = Clock::system().now();
    let db = open_db(&config).await?;
    match cmd {
        SchoolUnitCommand::Add { code, name } => {
            if code.is_empty()
                || code.len() > 32
                || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                bail!("school unit code must be 1-32 characters of A-Z, a-z, 0-9 or '-'");
            }
            if name.trim().is_empty() {
                bail!("school unit name must not be empty");
            }
            storage::persons::upsert_school_unit(&db, &code, name.trim(), "local").await?;
            audit(&db, "school_unit.save", &code, now).await?;
            println!("school unit {code} saved");
        }
        SchoolUnitCommand::List { json } => {
            let units = storage::persons::school_units(&db).await?;
            if json {
                let v: Vec<_> = units
                    .iter()
                    .map(|(code, name)| serde_json::json!({ "code": code, "name": name }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (code, name) in units {
                    println!("{code:<12} {name}");
                }
            }
        }
    }
    Ok(())
}

pub(super) async fn person_cmd(config: Config, cmd: PersonCommand) -> anyhow::Result<()> {
    let now = Clock::system().now();
    let db = open_db(&config).await?;
    let PersonCommand::Show { key, json } = cmd;
    let found = directory::by_key(&db, &key).await?;
    let person = match found.len() {
        0 => bail!("no person with username, eppn, id or civic number {key}"),
        1 => found
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no person"))?,
        n => bail!("{n} people match {key}; use the username or the id"),
    };
    if person.protected_identity {
        audit(&db, "person.view_protected", &person.id, now).await?;
    }
    let d = directory::details(
        &db,
        &config.directory,
        person,
        directory::roles::day_of(now),
    )
    .await?;
    let view = crate::directory::show(&d, &config.saml_scope());
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", crate::directory::show_text(&view));
    }
    Ok(())
}
