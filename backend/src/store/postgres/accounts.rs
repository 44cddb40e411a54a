//! PostgreSQL's accounts: admins, deactivation, display names, passwords, session lists,
//! and invitation and reset links.

use shared::api::{Account, Invitation, Person};
use shared::chat::Millis;
use tokio_postgres::{GenericClient, Row};

use super::{Failure, refused};
use crate::store::{AccountChange, Missing, NewLink, StoreError, TokenRecord};

pub(super) const HAS_PEOPLE: &str = "SELECT EXISTS (SELECT 1 FROM users WHERE NOT bot)";

/// Uses an invitation once, or says why it cannot be used.
pub(super) async fn use_invitation(
    client: &impl GenericClient,
    code_hash: &str,
    now: Millis,
) -> Result<(), Failure> {
    let used = client
        .execute(
            "UPDATE links SET uses = uses + 1 WHERE code_hash = $1 AND kind = 'invite'
             AND NOT revoked AND expires_at > $2 AND uses < max_uses",
            &[&code_hash, &now],
        )
        .await?;
    if used == 0 {
        return refused(StoreError::Forbidden(
            "this invitation link is not valid: it may have expired, been used up or revoked"
                .into(),
        ));
    }
    Ok(())
}

pub(super) const ACCOUNT: &str =
    "SELECT u.name, u.display_name, u.admin, u.bot, u.deactivated, u.created_at,
        (SELECT MAX(t.last_used_at) FROM tokens t WHERE t.user_name = u.name), u.avatar
     FROM users u";

pub(super) fn account_row(row: &Row) -> Account {
    Account {
        name: row.get(0),
        display_name: row.get(1),
        admin: row.get(2),
        bot: row.get(3),
        deactivated: row.get(4),
        created_at: row.get(5),
        last_active: row.get(6),
        avatar: row.get(7),
    }
}

pub(super) fn person_row(row: &Row) -> Person {
    Person { name: row.get(0), display_name: row.get(1), bot: row.get(2), avatar: row.get(3) }
}

pub(super) fn token_row(row: &Row) -> TokenRecord {
    TokenRecord {
        hash: row.get(0),
        device: row.get(1),
        created_at: row.get(2),
        last_used_at: row.get(3),
    }
}

pub(super) fn invitation_row(row: &Row) -> Invitation {
    Invitation {
        id: row.get(0),
        created_by: row.get(1),
        created_at: row.get(2),
        expires_at: row.get(3),
        max_uses: u32::try_from(row.get::<_, i32>(4)).unwrap_or(0),
        uses: u32::try_from(row.get::<_, i32>(5)).unwrap_or(0),
        revoked: row.get(6),
        path: None,
    }
}

/// Deletes `user`'s tokens but `keep`; returns their hashes.
async fn revoke_all(
    client: &impl GenericClient,
    user: &str,
    keep: Option<&str>,
) -> Result<Vec<String>, Failure> {
    let rows = client
        .query(
            "DELETE FROM tokens WHERE user_name = $1 AND token_hash IS DISTINCT FROM $2 RETURNING token_hash",
            &[&user, &keep],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

pub(super) async fn update_account(
    client: &impl GenericClient,
    name: &str,
    change: &AccountChange,
) -> Result<Vec<String>, Failure> {
    // The row is locked: two admins unmaking each other at once cannot leave none.
    client.execute("SELECT 1 FROM users WHERE admin FOR UPDATE", &[]).await?;
    let row = client.query_opt(&format!("{ACCOUNT} WHERE u.name = $1"), &[&name]).await?;
    let Some(account) = row.as_ref().map(account_row) else {
        return refused(StoreError::NotFound(Missing::User(name.to_owned())));
    };
    let other_admins = || async {
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM users WHERE admin AND NOT deactivated AND name <> $1",
                &[&name],
            )
            .await?;
        Ok::<i64, Failure>(row.get(0))
    };
    let last_admin = || {
        refused(StoreError::Forbidden(
            "this is the only admin: make someone else an admin first".into(),
        ))
    };
    match change {
        AccountChange::Admin(admin) => {
            if account.bot {
                return refused(StoreError::Forbidden("a bot cannot be an admin".into()));
            }
            if !admin && account.admin && other_admins().await? == 0 {
                return last_admin();
            }
            client.execute("UPDATE users SET admin = $2 WHERE name = $1", &[&name, admin]).await?;
            Ok(Vec::new())
        }
        AccountChange::Active(active) => {
            if !active && account.admin && other_admins().await? == 0 {
                return last_admin();
            }
            client
                .execute("UPDATE users SET deactivated = $2 WHERE name = $1", &[&name, &!active])
                .await?;
            if *active { Ok(Vec::new()) } else { revoke_all(client, name, None).await }
        }
        AccountChange::DisplayName(display_name) => {
            client
                .execute(
                    "UPDATE users SET display_name = $2 WHERE name = $1",
                    &[&name, display_name],
                )
                .await?;
            Ok(Vec::new())
        }
        AccountChange::Password { hash, keep } => {
            if account.bot {
                return refused(StoreError::Forbidden("a bot has no password".into()));
            }
            client
                .execute("UPDATE users SET password_hash = $2 WHERE name = $1", &[&name, hash])
                .await?;
            revoke_all(client, name, keep.as_deref()).await
        }
    }
}

pub(super) async fn create_link(
    client: &impl GenericClient,
    link: &NewLink,
    now: Millis,
) -> Result<(), Failure> {
    let max_uses = i32::try_from(link.max_uses).unwrap_or(i32::MAX);
    client
        .execute(
            "INSERT INTO links (code_hash, id, kind, user_name, created_by, created_at, expires_at, max_uses)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &link.code_hash,
                &link.id,
                &link.kind.as_str(),
                &link.user,
                &link.created_by,
                &now,
                &link.expires_at,
                &max_uses,
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn redeem_reset(
    client: &impl GenericClient,
    code_hash: &str,
    password_hash: &str,
    now: Millis,
) -> Result<(String, Vec<String>), Failure> {
    let row = client
        .query_opt(
            "UPDATE links SET uses = uses + 1 WHERE code_hash = $1 AND kind = 'reset'
             AND NOT revoked AND expires_at > $2 AND uses < max_uses
             AND user_name IN (SELECT name FROM users WHERE NOT deactivated)
             RETURNING user_name",
            &[&code_hash, &now],
        )
        .await?;
    let Some(user) = row.map(|row| row.get::<_, String>(0)) else {
        return refused(StoreError::Forbidden(
            "this reset link is not valid: it may have expired or been used".into(),
        ));
    };
    client
        .execute("UPDATE users SET password_hash = $2 WHERE name = $1", &[&user, &password_hash])
        .await?;
    client
        .execute(
            "UPDATE links SET revoked = true WHERE kind = 'reset' AND user_name = $1",
            &[&user],
        )
        .await?;
    let revoked = revoke_all(client, &user, None).await?;
    Ok((user, revoked))
}
