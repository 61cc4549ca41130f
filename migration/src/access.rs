//! Who may touch what: one login role per service, granted what that
//! service reads and writes and nothing else; the owner role that runs the
//! migrations owns every table. [`grant`] applies this map at the end of
//! `migration up` (in its transaction, so a schema found current has its
//! grants too); a service checks its own part at startup ([`missing`]).
//!
//! The outbox and the heartbeats are shared tables: row-level security
//! keeps each service to its own rows there, so that product cannot stage
//! an `OrderCreated` for order's relay to publish with order's broker
//! rights. The owner is not subject to it.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbErr, Statement};

/// What one service's role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceAccess {
    /// The service's name, as in the outbox's `source` and `heartbeats`.
    pub service: &'static str,
    /// Table and privileges, as `GRANT` spells them.
    pub grants: &'static [(&'static str, &'static str)],
}

impl ServiceAccess {
    /// The service's login role.
    pub fn role(&self) -> String {
        role_of(self.service)
    }
}

/// The login role of `service` (`ecommerce_order`, ...).
pub fn role_of(service: &str) -> String {
    format!("ecommerce_{service}")
}

/// Every service's tables. `seaql_migrations` is read to wait for the
/// schema; `heartbeats` takes a paused consumer's write probe.
pub const SERVICES: [ServiceAccess; 3] = [
    ServiceAccess {
        service: "order",
        grants: &[
            ("orders", "SELECT, INSERT, UPDATE"),
            ("idempotency_keys", "SELECT, INSERT"),
            ("outbox", "SELECT, INSERT, UPDATE, DELETE"),
            ("heartbeats", "SELECT, INSERT, UPDATE"),
            ("seaql_migrations", "SELECT"),
        ],
    },
    ServiceAccess {
        service: "product",
        grants: &[
            ("products", "SELECT, INSERT, UPDATE"),
            ("processed_events", "SELECT, INSERT"),
            ("outbox", "SELECT, INSERT, UPDATE, DELETE"),
            ("heartbeats", "SELECT, INSERT, UPDATE"),
            ("seaql_migrations", "SELECT"),
        ],
    },
    ServiceAccess {
        service: "notification",
        grants: &[
            ("sent_emails", "SELECT, INSERT, UPDATE"),
            ("heartbeats", "SELECT, INSERT, UPDATE"),
            ("seaql_migrations", "SELECT"),
        ],
    },
];

/// Tables shared by services, each with the column naming the service a
/// row belongs to.
const OWN_ROWS: [(&str, &str); 2] = [("outbox", "source"), ("heartbeats", "service")];

/// The part of [`SERVICES`] for `service`.
pub fn of(service: &str) -> Option<&'static ServiceAccess> {
    SERVICES.iter().find(|access| access.service == service)
}

/// What [`grant`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Granted {
    pub roles: Vec<String>,
    /// Roles of the map that do not exist in this cluster: nothing granted.
    pub missing_roles: Vec<String>,
}

/// Grants every existing service role exactly its part of [`SERVICES`]
/// (revoking first, so a privilege dropped from the map is taken back) and
/// sets the row policies of the shared tables. Idempotent. Roles are made
/// by whoever may (`migration up` with the passwords set, CloudNativePG's
/// managed roles, an administrator); one that does not exist yet is named
/// in the answer, and granted on the next `migration up`.
pub async fn grant<C: ConnectionTrait>(db: &C) -> Result<Granted, DbErr> {
    let mut granted = Granted::default();
    for (table, _) in OWN_ROWS {
        execute(
            db,
            &format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"),
        )
        .await?;
    }
    for access in SERVICES {
        let role = access.role();
        if !role_exists(db, &role).await? {
            granted.missing_roles.push(role);
            continue;
        }
        for (table, privileges) in access.grants {
            execute(db, &format!("REVOKE ALL ON {table} FROM {role}")).await?;
            execute(db, &format!("GRANT {privileges} ON {table} TO {role}")).await?;
        }
        for (table, column) in OWN_ROWS {
            let policy = format!("{table}_{role}");
            execute(db, &format!("DROP POLICY IF EXISTS {policy} ON {table}")).await?;
            if access.grants.iter().any(|(t, _)| *t == table) {
                // The service's name is a constant of this map: no quoting issue.
                execute(
                    db,
                    &format!(
                        "CREATE POLICY {policy} ON {table} TO {role} \
                         USING ({column} = '{service}') WITH CHECK ({column} = '{service}')",
                        service = access.service
                    ),
                )
                .await?;
            }
        }
        granted.roles.push(role);
    }
    Ok(granted)
}

/// Creates `role` as a login role with `password`, or sets the password of
/// the one that exists. Needs CREATEROLE. Runs before the migration's
/// advisory lock is taken: two `migration up` creating the same role at
/// the same moment can make one fail ("already exists", exit 1); run it
/// again.
pub async fn ensure_login_role<C: ConnectionTrait>(
    db: &C,
    role: &str,
    password: &str,
) -> Result<(), DbErr> {
    let verb = if role_exists(db, role).await? {
        "ALTER"
    } else {
        "CREATE"
    };
    // A password cannot be a bind parameter of CREATE ROLE: quoted as a
    // literal instead (single quotes doubled).
    let literal = password.replace('\'', "''");
    execute(
        db,
        &format!("{verb} ROLE {role} WITH LOGIN NOINHERIT PASSWORD '{literal}'"),
    )
    .await
}

/// The privileges of `service`'s part of [`SERVICES`] that the session's
/// role lacks, as `"INSERT on orders"`: a service started with another
/// role's credentials, or before `migration up` granted them, says which.
pub async fn missing<C: ConnectionTrait>(db: &C, service: &str) -> Result<Vec<String>, DbErr> {
    let Some(access) = of(service) else {
        return Ok(vec![]);
    };
    let mut missing = vec![];
    for (table, privileges) in access.grants {
        for privilege in privileges.split(", ") {
            let row = db
                .query_one_raw(Statement::from_sql_and_values(
                    db.get_database_backend(),
                    "SELECT has_table_privilege(current_user, $1, $2)",
                    [(*table).into(), privilege.into()],
                ))
                .await?;
            let held = row
                .map(|row| row.try_get_by_index::<bool>(0))
                .transpose()?
                .unwrap_or(false);
            if !held {
                missing.push(format!("{privilege} on {table}"));
            }
        }
    }
    Ok(missing)
}

async fn role_exists<C: ConnectionTrait>(db: &C, role: &str) -> Result<bool, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
            [role.into()],
        ))
        .await?;
    Ok(row
        .map(|row| row.try_get_by_index::<bool>(0))
        .transpose()?
        .unwrap_or(false))
}

async fn execute<C: ConnectionTrait>(db: &C, sql: &str) -> Result<(), DbErr> {
    db.execute_unprepared(sql).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_reads_the_schema_state_and_only_order_and_product_stage_events() {
        for access in SERVICES {
            assert!(
                access.grants.contains(&("seaql_migrations", "SELECT")),
                "{}",
                access.service
            );
        }
        let staging: Vec<_> = SERVICES
            .iter()
            .filter(|a| a.grants.iter().any(|(table, _)| *table == "outbox"))
            .map(|a| a.service)
            .collect();
        assert_eq!(staging, ["order", "product"]);
    }

    #[test]
    fn roles_are_named_after_their_service() {
        assert_eq!(
            of("product").map(ServiceAccess::role).as_deref(),
            Some("ecommerce_product")
        );
        assert_eq!(of("payment"), None);
    }
}
