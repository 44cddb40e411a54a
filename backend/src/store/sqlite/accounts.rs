//! The embedded store's accounts: admins, deactivation, display names, passwords, session
//! lists, and invitation and reset links.

use rusqlite::{Connection, OptionalExtension, params};
use shared::api::{Account, Invitation, Person};
use shared::chat::Millis;

use crate::store::{AccountChange, Missing, NewLink, StoreError, TokenRecord};

pub(super) fn has_people(connection: &Connection) -> Result<bool, StoreError> {
    Ok(connection
        .query_row("SELECT EXISTS (SELECT 1 FROM users WHERE bot = 0)", [], |row| row.get(0))?)
}

/// Uses an invitation once, or says why it cannot be used.
pub(super) fn use_invitation(
    connection: &Connection,
    code_hash: &str,
    now: Millis,
) -> Result<(), StoreError> {
    let used = connection.execute(
        "UPDATE links SET uses = uses + 1 WHERE code_hash = ?1 AND kind = 'invite'
         AND revoked = 0 AND expires_at > ?2 AND uses < max_uses",
        params![code_hash, now],
    )?;
    if used == 0 {
        return Err(StoreError::Forbidden(
            "this invitation link is not valid: it may have expired, been used up or revoked"
                .into(),
        ));
    }
    Ok(())
}

const ACCOUNT: &str = "SELECT u.name, u.display_name, u.admin, u.bot, u.deactivated, u.created_at,
        u.last_active, u.avatar FROM users u";

fn account_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        name: row.get(0)?,
        display_name: row.get(1)?,
        admin: row.get(2)?,
        bot: row.get(3)?,
        deactivated: row.get(4)?,
        created_at: row.get(5)?,
        last_active: row.get(6)?,
        avatar: row.get(7)?,
    })
}

pub(super) fn account(connection: &Connection, name: &str) -> Result<Option<Account>, StoreError> {
    let mut statement = connection.prepare_cached(&format!("{ACCOUNT} WHERE u.name = ?1"))?;
    Ok(statement.query_row(params![name], account_row).optional()?)
}

pub(super) fn accounts(connection: &Connection) -> Result<Vec<Account>, StoreError> {
    let mut statement = connection.prepare_cached(&format!("{ACCOUNT} ORDER BY u.name"))?;
    Ok(statement.query_map([], account_row)?.collect::<Result<_, _>>()?)
}

pub(super) fn people(connection: &Connection) -> Result<Vec<Person>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT name, display_name, bot, avatar FROM users WHERE deactivated = 0 ORDER BY name",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(Person {
            name: row.get(0)?,
            display_name: row.get(1)?,
            bot: row.get(2)?,
            avatar: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes `user`'s tokens but `keep`; returns their hashes.
fn revoke_all(
    connection: &Connection,
    user: &str,
    keep: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let mut statement = connection.prepare_cached(
        "DELETE FROM tokens WHERE user_name = ?1 AND token_hash IS NOT ?2 RETURNING token_hash",
    )?;
    Ok(statement.query_map(params![user, keep], |row| row.get(0))?.collect::<Result<_, _>>()?)
}

pub(super) fn update_account(
    connection: &Connection,
    name: &str,
    change: &AccountChange,
) -> Result<Vec<String>, StoreError> {
    let Some(account) = account(connection, name)? else {
        return Err(StoreError::NotFound(Missing::User(name.to_owned())));
    };
    let name = account.name.as_str();
    let other_admins = || -> Result<u64, StoreError> {
        Ok(connection.query_row(
            "SELECT COUNT(*) FROM users WHERE admin = 1 AND deactivated = 0 AND name <> ?1",
            params![name],
            |row| row.get(0),
        )?)
    };
    match change {
        AccountChange::Admin(admin) => {
            if account.bot {
                return Err(StoreError::Forbidden("a bot cannot be an admin".into()));
            }
            if !admin && account.admin && other_admins()? == 0 {
                return Err(StoreError::Forbidden(
                    "this is the only admin: make someone else an admin first".into(),
                ));
            }
            connection
                .execute("UPDATE users SET admin = ?2 WHERE name = ?1", params![name, admin])?;
            Ok(Vec::new())
        }
        AccountChange::Active(active) => {
            if !active && account.admin && other_admins()? == 0 {
                return Err(StoreError::Forbidden(
                    "this is the only admin: make someone else an admin first".into(),
                ));
            }
            connection.execute(
                "UPDATE users SET deactivated = ?2 WHERE name = ?1",
                params![name, !active],
            )?;
            if *active { Ok(Vec::new()) } else { revoke_all(connection, name, None) }
        }
        AccountChange::DisplayName(display_name) => {
            connection.execute(
                "UPDATE users SET display_name = ?2 WHERE name = ?1",
                params![name, display_name],
            )?;
            Ok(Vec::new())
        }
        AccountChange::Password { hash, keep } => {
            if account.bot {
                return Err(StoreError::Forbidden("a bot has no password".into()));
            }
            connection.execute(
                "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                params![name, hash],
            )?;
            revoke_all(connection, name, keep.as_deref())
        }
    }
}

pub(super) fn sessions(
    connection: &Connection,
    user: &str,
    now: Millis,
) -> Result<Vec<TokenRecord>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT token_hash, device, created_at, last_used_at FROM tokens
         WHERE user_name = ?1 AND expires_at > ?2 ORDER BY last_used_at DESC, created_at DESC",
    )?;
    let rows = statement.query_map(params![user, now], |row| {
        Ok(TokenRecord {
            hash: row.get(0)?,
            device: row.get(1)?,
            created_at: row.get(2)?,
            last_used_at: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn create_link(
    connection: &Connection,
    link: &NewLink,
    now: Millis,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO links (code_hash, id, kind, user_name, created_by, created_at, expires_at, max_uses)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            link.code_hash,
            link.id,
            link.kind.as_str(),
            link.user,
            link.created_by,
            now,
            link.expires_at,
            link.max_uses
        ],
    )?;
    Ok(())
}

pub(super) fn invitations(connection: &Connection) -> Result<Vec<Invitation>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT id, created_by, created_at, expires_at, max_uses, uses, revoked FROM links
         WHERE kind = 'invite' ORDER BY created_at DESC, id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(Invitation {
            id: row.get(0)?,
            created_by: row.get(1)?,
            created_at: row.get(2)?,
            expires_at: row.get(3)?,
            max_uses: row.get(4)?,
            uses: row.get(5)?,
            revoked: row.get(6)?,
            path: None,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn revoke_invitation(connection: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(connection
        .execute("UPDATE links SET revoked = 1 WHERE id = ?1 AND kind = 'invite'", params![id])?
        > 0)
}

pub(super) fn redeem_reset(
    connection: &Connection,
    code_hash: &str,
    password_hash: &str,
    now: Millis,
) -> Result<(String, Vec<String>), StoreError> {
    let user: Option<String> = connection
        .query_row(
            "UPDATE links SET uses = uses + 1 WHERE code_hash = ?1 AND kind = 'reset'
             AND revoked = 0 AND expires_at > ?2 AND uses < max_uses
             AND user_name IN (SELECT name FROM users WHERE deactivated = 0)
             RETURNING user_name",
            params![code_hash, now],
            |row| row.get(0),
        )
        .optional()?;
    let Some(user) = user else {
        return Err(StoreError::Forbidden(
            "this reset link is not valid: it may have expired or been used".into(),
        ));
    };
    connection.execute(
        "UPDATE users SET password_hash = ?2 WHERE name = ?1",
        params![user, password_hash],
    )?;
    // Any other reset link of the account is spent too.
    connection.execute(
        "UPDATE links SET revoked = 1 WHERE kind = 'reset' AND user_name = ?1",
        params![user],
    )?;
    let revoked = revoke_all(connection, &user, None)?;
    Ok((user, revoked))
}

pub(super) fn messages_since(connection: &Connection, since: Millis) -> Result<u64, StoreError> {
    Ok(connection.query_row(
        "SELECT (SELECT COUNT(*) FROM messages WHERE sent_at > ?1 AND change IS NULL)
              + (SELECT COUNT(*) FROM direct_messages WHERE sent_at > ?1 AND sender = owner)",
        params![since],
        |row| row.get(0),
    )?)
}
