//! The store contract, checked on the store itself: one suite of named contracts, each run
//! unchanged against the embedded SQLite store and against PostgreSQL.

use std::collections::BTreeSet;
use std::sync::Arc;

use backend::store::postgres::PostgresStore;
use backend::store::sqlite::{SqliteOptions, SqliteStore};
use backend::store::{
    AccountChange, Admission, FilePlace, FileRecord, LinkKind, Missing, NEVER, NewHook, NewLink,
    NewPost, Record, Store, StoreError, Stored,
};

const OPEN: Admission = Admission::OPEN;
use shared::chat::{LOBBY, Role, RoomChange};

use crate::support::PostgresServer;

/// A fresh store of one kind, with whatever keeps it alive.
struct Fresh {
    store: Arc<dyn Store>,
    dir: Option<tempfile::TempDir>,
    postgres: Option<PostgresServer>,
}

impl Fresh {
    /// Another handle on the same data, as a second node (or process) would open it.
    async fn another(&self) -> Arc<dyn Store> {
        match (&self.dir, &self.postgres) {
            (Some(dir), _) => {
                Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap())
            }
            (None, Some(server)) => Arc::new(PostgresStore::connect(&server.url()).await.unwrap()),
            (None, None) => unreachable!("a store has a directory or a server"),
        }
    }
}

async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    Fresh { store: Arc::new(store), dir: Some(dir), postgres: None }
}

async fn postgres() -> Fresh {
    let server = PostgresServer::start().await;
    let store = PostgresStore::connect(&server.url()).await.unwrap();
    Fresh { store: Arc::new(store), dir: None, postgres: Some(server) }
}

/// Generates `#[tokio::test]`s for each contract on each store.
macro_rules! contracts {
    ($($contract:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $contract() {
                    let fresh = super::sqlite().await;
                    super::$contract(&fresh).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $contract() {
                    let fresh = super::postgres().await;
                    super::$contract(&fresh).await;
                }
            )*
        }
    };
}

contracts!(
    accounts,
    tokens_expire_extend_and_revoke,
    rooms_and_membership,
    room_ids_start_at_one_without_gaps_and_keys_deduplicate,
    concurrent_writers_never_share_or_skip_an_id,
    a_batch_is_stored_whole_or_not_at_all,
    direct_messages_land_in_both_inboxes,
    dm_keys_are_scoped_to_the_conversation,
    a_flood_of_dms_neither_erases_nor_hides_other_conversations,
    history_pages,
    read_markers_move_forward_only,
    export_then_import_keeps_everything,
    bots_and_webhooks,
);

fn room_post(room: &str, sender: &str, text: &str, key: Option<&str>) -> NewPost {
    NewPost::Room {
        room: room.into(),
        sender: sender.into(),
        text: text.into(),
        key: key.map(str::to_owned),
        bot: false,
        reply_to: None,
        files: Vec::new(),
    }
}

fn dm_post(from: &str, to: &str, text: &str, key: Option<&str>) -> NewPost {
    NewPost::Dm {
        from: from.into(),
        to: to.into(),
        text: text.into(),
        key: key.map(str::to_owned),
        bot: false,
        files: Vec::new(),
    }
}

async fn post_one(store: &dyn Store, post: NewPost) -> Result<Stored, StoreError> {
    Ok(store.post(vec![post], 1_000).await?.remove(0))
}

fn room_seq(stored: &Stored) -> (u64, bool) {
    match stored {
        Stored::Room(posted) => (posted.message.seq, posted.duplicate),
        Stored::Dm(_) => panic!("expected a room message"),
    }
}

async fn accounts(fresh: &Fresh) {
    let store = fresh.store.as_ref();
    store.create_user("ann", "hash-a", 1, &OPEN).await.unwrap();
    assert!(matches!(
        store.create_user("ann", "hash-b", 2, &OPEN).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.password_hash("ann").await.unwrap().as_deref(), Some("hash-a"));
    assert_eq!(store.password_hash("nobody").await.unwrap(), None);
    assert!(store.user_exists("ann").await.unwrap());
    assert!(!store.user_exists("nobody").await.unwrap());
    // New users are in the lobby.
    assert!(store.is_member(LOBBY, "ann").await.unwrap());
}

async fn tokens_expire_extend_and_revoke(fresh: &Fresh) {
    let store = fresh.store.as_ref();
    store.create_user("ann", "hash", 1, &OPEN).await.unwrap();
    store.store_token("t1", "ann", 100, 1_000, "test").await.unwrap();
    assert_eq!(store.token_owner("t1", 500).await.unwrap().unwrap().user, "ann");
    assert_eq!(store.token_owner("t1", 1_000).await.unwrap(), None, "expired at its time");
    store.extend_token("t1", 2_000, 0).await.unwrap();
    store.extend_token("t1", 1_500, 0).await.unwrap();
    let owner = store.token_owner("t1", 1_200).await.unwrap().unwrap();
    assert_eq!(owner.expires_at, 2_000, "never shortened");
    assert_eq!(store.revoke_token("t1").await.unwrap().as_deref(), Some("ann"));
    assert_eq!(store.token_owner("t1", 1_200).await.unwrap(), None);
    assert_eq!(store.revoke_token("t1").await.unwrap(), None);
}

async fn rooms_and_membership(fresh: &Fresh) {
    let store = fresh.store.as_ref();
    store.create_user("ann", "h", 1, &OPEN).await.unwrap();
    store.create_user("bob", "h", 1, &OPEN).await.unwrap();
    store.create_room("dev", "ann", 1, false).await.unwrap();
    assert!(matches!(
        store.create_room("dev", "bob", 2, false).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.rooms_created_by("ann").await.unwrap(), 1);
    assert_eq!(store.rooms_created_by("bob").await.unwrap(), 0);
    let rooms = store.rooms_for("bob").await.unwrap();
    assert!(rooms.iter().any(|room| room.name == LOBBY && room.joined));
    assert!(rooms.iter().any(|room| room.name == "dev" && !room.joined && room.members == 1));
    store.join_room("dev", "bob").await.unwrap();
    store.join_room("dev", "bob").await.unwrap();
    assert!(store.is_member("dev", "bob").await.unwrap());
    store.leave_room("dev", "bob").await.unwrap();
    assert!(!store.is_member("dev", "bob").await.unwrap());
    assert!(matches!(
        store.join_room("nowhere", "bob").await,
        Err(StoreError::NotFound(Missing::Room(room))) if room == "nowhere"
    ));
    assert!(store.room_exists("dev").await.unwrap());
    assert!(!store.room_exists("nowhere").await.unwrap());
}

async fn room_ids_start_at_one_without_gaps_and_keys_deduplicate(fresh: &Fresh) {
    let store = fresh.store.as_ref();
    store.create_user("ann", "h", 1, &OPEN).await.unwrap();
    let first = post_one(store, room_post(LOBBY, "ann", "one", Some("k1"))).await.unwrap();
    let second = post_one(store, room_post(LOBBY, "ann", "two", None)).await.unwrap();
    let again = post_one(store, room_post(LOBBY, "ann", "one again", Some("k1"))).await.unwrap();
    let other = post_one(store, room_post(LOBBY, "bob", "three", Some("k1"))).await.unwrap();
    assert_eq!(room_seq(&first), (1, false));
    assert_eq!(room_seq(&second), (2, false));
    assert_eq!(room_seq(&again), (1, true), "a resend is the first message");
    let Stored::Room(again) = again else { unreachable!() };
    assert_eq!(again.message.text, "one");
    assert_eq!(room_seq(&other), (3, false), "keys are per sender");
    assert_eq!(store.room_last_seq(LOBBY).await.unwrap(), 3);
    assert!(matches!(
        post_one(store, room_post("nowhere", "ann", "x", None)).await,
        Err(StoreError::NotFound(Missing::Room(_)))
    ));
    assert_eq!(store.room_last_seq(LOBBY).await.unwrap(), 3, "a failed post takes no id");
}

async fn concurrent_writers_never_share_or_skip_an_id(fresh: &Fresh) {
    // Two handles writing into one room at once, as two nodes (or two processes) would,
    // each with several requests in flight.
    let stores = [fresh.store.clone(), fresh.another().await];
    let n_each = 60;
    let mut writers = Vec::new();
    for (index, store) in stores.iter().enumerate() {
        for lane in 0..3 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for n in 0..n_each {
                    let post = room_post(LOBBY, &format!("w{index}{lane}"), &format!("m{n}"), None);
                    seqs.push(room_seq(&post_one(store.as_ref(), post).await.unwrap()).0);
                }
                seqs
            }));
        }
    }
    let mut all = Vec::new();
    for writer in writers {
        all.extend(writer.await.unwrap());
    }
    let total = (stores.len() * 3 * n_each) as u64;
    let distinct: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "no id given twice");
    assert_eq!(distinct, (1..=total).collect(), "no id skipped");
    let stored: Vec<u64> =
        fresh.store.room_after(LOBBY, 0, 1000).await.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!(stored, (1..=total).collect::<Vec<_>>());
}

async fn a_batch_is_stored_whole_or_not_at_all(fresh: &Fresh) {
    let store = fresh.store.as_ref();
    store.create_user("ann", "h", 1, &OPEN).await.unwrap();
    store.create_user("bob", "h", 1, &OPEN).await.unwrap();
    let batch = vec![
        room_post(LOBBY, "ann", "first", None),
        dm_post("ann", "bob", "psst", None),
        room_post("nowhere", "ann", "lost", None),
    ];
    assert!(matches!(store.post(batch, 1).await, Err(StoreError::NotFound(Missing::Room(_)))));
    assert_eq!(store.room_last_seq(LOBBY).await.unwrap(), 0, "the first post was undone");
    assert_eq!(store.inbox_last_seq("bob").await.unwrap(), 0, "and the DM");
    let batch = vec![room_post(LOBBY, "ann", "one", None), dm_post("ann", "nobody", "x", None)];
    assert!(matches!(store.post(batch, 1).await, Err(StoreError::NotFound(Missing::User(_)))));
    assert_eq!(store.room_last_seq(LOBBY).await.unwrap(), 0);
    let batch = vec![room_post(LOBBY, "ann", "one", None), room_post(LOBBY, "ann", "two", None)];
    let stored = store.post(batch, 1).await.unwrap();
    assert_eq!(stored.iter().map(|s| room_seq(s).0).collect::<Vec<_>>(), [1, 2]);
}

async fn direct_messages_land_in_both_inboxes(fresh: &Fresh) {
    let store = fresh.store.as_ref();
    for user in ["ann", "bob"] {
        store.create_user(user, "h", 1, &OPEN).await.unwrap();
    }
    let Stored::Dm(first) =
        post_one(store, dm_post("ann", "bob", "hi bob", Some("a"))).await.unwrap()
    else {
        panic!("a DM")
    };
    assert_eq!((first.message.sender.seq, first.message.recipient.as_ref().unwrap().seq), (1, 1));
    post_one(store, dm_post("bob", "ann", "hi ann", None)).await.unwrap();
    let Stored::Dm(again) =
        post_one(store, dm_post("ann", "bob", "hi bob", Some("a"))).await.unwrap()
    else {
        panic!("a DM")
    };
    assert!(again.duplicate);
    assert_eq!(again.message.sender.seq, 1);
    assert_eq!(store.inbox_after("bob", 0, 10).await.unwrap().len(), 2);
    // A note to oneself is stored once.
    let Stored::Dm(note) = post_one(store, dm_post("ann", "ann", "todo", None)).await.unwrap()
    else {
        panic!("a DM")
    };
    assert!(note.message.recipient.is_none());
    assert_eq!(store.inbox_last_seq("ann").await.unwrap(), 3);
    assert!(matches!(
        post_one(store, dm_post("ann", "nobody", "hi", None)).await,
        Err(StoreError::NotFound(Missing::User(_)))
    ));
    let summaries = store.dm_summaries("ann").await.unwrap();
    assert_eq!(summaries[0].peer, "ann", "most recent first");
    let bob = summaries.iter().find(|summary| summary.peer == "bob").unwrap();
    assert_eq!((bob.last_seq, bob.unread), (2, 1));
    store.mark_dm_read("ann", "bob", 2).await.unwrap();
    let summaries = store.dm_summaries("ann").await.unwrap();
    assert_eq!(summaries.iter().find(|summary| summary.peer == "bob").unwrap().unread, 0);
}

async fn dm_keys_are_scoped_to_the_conversation(fresh: &Fresh) {
    // Security review M7: one key sent to two people is two messages.
    let store = fresh.store.as_ref();
    for user in ["ann", "bob", "carl"] {
        store.create_user(user, "h", 1, &OPEN).await.unwrap();
    }
    let to_bob = post_one(store, dm_post("ann", "bob", "hi", Some("1"))).await.unwrap();
    let to_carl = post_one(store, dm_post("ann", "carl", "hi", Some("1"))).await.unwrap();
    let (Stored::Dm(to_bob), Stored::Dm(to_carl)) = (to_bob, to_carl) else { panic!("DMs") };
    assert!(!to_bob.duplicate && !to_carl.duplicate);
    assert_eq!(store.inbox_after("carl", 0, 10).await.unwrap().len(), 1);
    let again = post_one(store, dm_post("ann", "carl", "hi", Some("1"))).await.unwrap();
    assert!(matches!(again, Stored::Dm(posted) if posted.duplicate));
}

async fn a_flood_of_dms_neither_erases_nor_hides_other_conversations(fresh: &Fresh) {
    // Security review M2 and M9: thousands of DMs from one sender leave the recipient's
    // other conversations whole, listed, and readable page by page.
    let store = fresh.store.as_ref();
    for user in ["vic", "walt", "spam"] {
        store.create_user(user, "h", 1, &OPEN).await.unwrap();
    }
    post_one(store, dm_post("walt", "vic", "the real one", None)).await.unwrap();
    post_one(store, dm_post("vic", "walt", "the reply", None)).await.unwrap();
    let flood: Vec<NewPost> =
        (0..6_000).map(|n| dm_post("spam", "vic", &format!("spam {n}"), None)).collect();
    for chunk in flood.chunks(500) {
        store.post(chunk.to_vec(), 2).await.unwrap();
    }
    let summaries = store.dm_summaries("vic").await.unwrap();
    let walt = summaries.iter().find(|summary| summary.peer == "walt");
    assert_eq!(walt.map(|summary| summary.last_seq), Some(2), "walt is still listed");
    let conversation = store.conversation_before("vic", "walt", None, 10).await.unwrap();
    let texts: Vec<&str> = conversation.iter().map(|message| message.text.as_str()).collect();
    assert_eq!(texts, ["the real one", "the reply"]);
    assert_eq!(store.inbox_last_seq("vic").await.unwrap(), 6_002);
}

async fn history_pages(fresh: &Fresh) {
    let store = fresh.store.as_ref();
    store.create_user("ann", "h", 1, &OPEN).await.unwrap();
    for n in 1..=5 {
        post_one(store, room_post(LOBBY, "ann", &format!("m{n}"), None)).await.unwrap();
    }
    let seqs = |messages: Vec<shared::chat::ChatMessage>| {
        messages.iter().map(|message| message.seq).collect::<Vec<_>>()
    };
    assert_eq!(seqs(store.room_before(LOBBY, Some(4), 2).await.unwrap()), [2, 3]);
    assert_eq!(seqs(store.room_before(LOBBY, None, 2).await.unwrap()), [4, 5]);
    assert_eq!(seqs(store.room_after(LOBBY, 3, 10).await.unwrap()), [4, 5]);
    assert_eq!(seqs(store.room_after(LOBBY, 0, 2).await.unwrap()), [1, 2]);
    assert_eq!(seqs(store.room_before(LOBBY, Some(u64::MAX), 1).await.unwrap()), [5]);
    assert!(matches!(
        store.room_after("nowhere", 0, 1).await,
        Err(StoreError::NotFound(Missing::Room(_)))
    ));
}

async fn read_markers_move_forward_only(fresh: &Fresh) {
    let store = fresh.store.as_ref();
    store.create_user("ann", "h", 1, &OPEN).await.unwrap();
    store.create_user("bob", "h", 1, &OPEN).await.unwrap();
    store.create_room("dev", "ann", 1, false).await.unwrap();
    for n in 0..3 {
        post_one(store, room_post("dev", "bob", &format!("m{n}"), None)).await.unwrap();
    }
    let dev = |rooms: Vec<shared::api::RoomSummary>| {
        rooms.into_iter().find(|room| room.name == "dev").unwrap()
    };
    assert_eq!(dev(store.rooms_for("ann").await.unwrap()).unread, 3);
    store.mark_room_read("dev", "ann", 2).await.unwrap();
    store.mark_room_read("dev", "ann", 1).await.unwrap();
    assert_eq!(dev(store.rooms_for("ann").await.unwrap()).unread, 1);
    store.mark_room_read("dev", "ann", u64::MAX).await.unwrap();
    let summary = dev(store.rooms_for("ann").await.unwrap());
    assert_eq!((summary.unread, summary.last_seq), (0, 3), "never past the last id");
    // Posting joined bob; carol joins now, at the present.
    store.create_user("carol", "h", 1, &OPEN).await.unwrap();
    store.join_room("dev", "carol").await.unwrap();
    assert_eq!(dev(store.rooms_for("carol").await.unwrap()).unread, 0, "joined at the present");
}

async fn export_then_import_keeps_everything(fresh: &Fresh) {
    let store = fresh.store.as_ref();
    store.create_user("ann", "hash-a", 1, &OPEN).await.unwrap();
    store.create_user("bob", "hash-b", 2, &OPEN).await.unwrap();
    store.create_room("dev", "ann", 3, false).await.unwrap();
    post_one(store, room_post("dev", "ann", "in dev", Some("k"))).await.unwrap();
    post_one(store, room_post(LOBBY, "bob", "hello", None)).await.unwrap();
    post_one(store, dm_post("ann", "bob", "psst", Some("d"))).await.unwrap();
    store.mark_dm_read("bob", "ann", 1).await.unwrap();
    store.mark_room_read(LOBBY, "ann", 1).await.unwrap();
    store.create_webhook(hook("h1", "dev", "ci", "secret-hash"), 4).await.unwrap();
    // What issue 11 added: roles, bans, mutes, a private room, changes and a deleted
    // message in the stream, display names, a deactivated account, links.
    store.create_user("cat", "hash-c", 5, &OPEN).await.unwrap();
    store.create_room("board", "bob", 5, true).await.unwrap();
    let change = |room: &str, actor: &str, change: RoomChange| {
        let (room, actor) = (room.to_owned(), actor.to_owned());
        async move { store.change_room(&room, &actor, change, 6).await.unwrap() }
    };
    change("dev", "ann", RoomChange::Role { user: "ci".into(), role: Role::Moderator }).await;
    change("dev", "ann", RoomChange::Banned { user: "cat".into() }).await;
    change(LOBBY, "ann", RoomChange::Muted { user: "bob".into() }).await;
    change("dev", "ann", RoomChange::Topic { topic: "builds".into() }).await;
    change("dev", "ann", RoomChange::Deleted { seq: 1 }).await;
    store.update_account("bob", AccountChange::DisplayName(Some("Bob B".into()))).await.unwrap();
    store.update_account("cat", AccountChange::Active(false)).await.unwrap();
    let link = NewLink {
        kind: LinkKind::Invite,
        id: "inv1".into(),
        code_hash: "code-hash".into(),
        user: None,
        created_by: "ann".into(),
        expires_at: 99,
        max_uses: 3,
    };
    store.create_link(link, 7).await.unwrap();
    // What issue 12 added: a reply, a mention, an edit, reactions, and the same in a DM.
    let reply = NewPost::Room {
        room: LOBBY.into(),
        sender: "ann".into(),
        text: "@bob about that".into(),
        key: None,
        bot: false,
        reply_to: Some(1),
        files: Vec::new(),
    };
    let Stored::Room(posted) = post_one(store, reply).await.unwrap() else { panic!("a room post") };
    assert_eq!(
        (posted.message.mentions.clone(), posted.message.reply_to.is_some()),
        (vec!["bob".to_owned()], true)
    );
    let seq = posted.message.seq;
    change(LOBBY, "ann", RoomChange::Edited { seq, text: "@bob about that, edited".into() }).await;
    change(LOBBY, "ann", RoomChange::Reacted { seq, emoji: "👍".into(), on: true }).await;
    let dm = store.change_dm("ann", "bob", RoomChange::Edited { seq: 1, text: "psst!".into() }, 8);
    dm.await.unwrap();
    let react = RoomChange::Reacted { seq: 1, emoji: "🎉".into(), on: true };
    store.change_dm("bob", "ann", react, 8).await.unwrap();
    // What issue 13 added: a file of two pieces with a thumbnail, sent to a room, and a
    // picture.
    let content: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
    let plan = add_file(store, FILE_A, &content, FilePlace::Unsent, true).await;
    let mut sent = room_post(LOBBY, "ann", "the plan", None);
    if let NewPost::Room { files, .. } = &mut sent {
        files.push(FILE_A.into());
    }
    let Stored::Room(with_file) = post_one(store, sent).await.unwrap() else {
        panic!("a room post")
    };
    assert_eq!(with_file.message.files, std::slice::from_ref(&plan));
    add_file(store, FILE_B, b"a face", FilePlace::Avatar, false).await;
    let mut records = Vec::new();
    store
        .export(&mut |batch| {
            records.extend(batch);
            Ok(())
        })
        .await
        .unwrap();
    assert!(records.iter().any(|record| matches!(record, Record::User { name, password_hash, .. } if name == "ann" && password_hash == "hash-a")));

    // Into the other kind of store, too: the embedded store into PostgreSQL is how a team
    // moves; here both directions run, since each store imports the other's export.
    for target in [sqlite().await, postgres().await] {
        target.store.import(records.clone()).await.unwrap();
        let mut again = Vec::new();
        target
            .store
            .export(&mut |batch| {
                again.extend(batch);
                Ok(())
            })
            .await
            .unwrap();
        // Compared record by record: a file's pieces are too long to print whole.
        assert_eq!(again.len(), records.len(), "as many records come back out");
        for (back, sent) in again.iter().zip(&records) {
            assert!(back == sent, "the same records come back out: {:.300}", format!("{back:?}"));
        }
        let next =
            post_one(target.store.as_ref(), room_post("dev", "bob", "next", None)).await.unwrap();
        assert_eq!(room_seq(&next), (6, false), "ids go on from where they were");
        let standing = target.store.standing("dev", "cat").await.unwrap().unwrap();
        assert!(standing.banned);
        let account = target.store.account("ann").await.unwrap().unwrap();
        assert!(account.admin, "the first account is the admin, and moves as one");
        let history = target.store.room_after("dev", 0, 10).await.unwrap();
        assert!(history[0].deleted && history[0].text.is_empty());
        assert_eq!(history[3].change, Some(RoomChange::Topic { topic: "builds".into() }));
        assert_eq!(target.store.password_hash("bob").await.unwrap().as_deref(), Some("hash-b"));
        let moved = target.store.webhook("secret-hash").await.unwrap().expect("the webhook moved");
        assert_eq!((moved.room.as_str(), moved.name.as_str()), ("dev", "ci"));
        let next =
            post_one(target.store.as_ref(), bot_post("dev", "ci", "still here")).await.unwrap();
        let page = target.store.room_after("dev", 0, 10).await.unwrap();
        assert!(page.iter().any(|message| message.text == "still here" && message.bot), "{next:?}");
        let lobby = target.store.room_after(LOBBY, 0, 20).await.unwrap();
        assert!(
            lobby.iter().any(|message| message.files == std::slice::from_ref(&plan)),
            "files move"
        );
        assert_eq!(read_file(target.store.as_ref(), FILE_A, false).await, content);
        assert_eq!(read_file(target.store.as_ref(), FILE_A, true).await, b"thumbnail");
        let moved = target.store.file(FILE_A).await.unwrap().unwrap();
        assert_eq!(moved.place, FilePlace::Room(LOBBY.into()));
        let ann = target.store.account("ann").await.unwrap().unwrap();
        assert_eq!(ann.avatar.as_deref(), Some(FILE_B));
        assert_eq!(read_file(target.store.as_ref(), FILE_B, false).await, b"a face");
    }
}

const FILE_A: &str = "0123456789abcdef0123456789abcdef";
const FILE_B: &str = "fedcba9876543210fedcba9876543210";

/// Stores a file of `ann`'s with these bytes (and a thumbnail saying so).
async fn add_file(
    store: &dyn Store,
    id: &str,
    content: &[u8],
    place: FilePlace,
    thumb: bool,
) -> shared::chat::Attachment {
    let dir = store.upload_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{id}.test"));
    std::fs::write(&path, content).unwrap();
    let thumb_path = thumb.then(|| {
        let path = dir.join(format!("{id}.test-thumb"));
        std::fs::write(&path, b"thumbnail").unwrap();
        path
    });
    let attachment = shared::chat::Attachment {
        id: id.into(),
        name: "plan.bin".into(),
        mime: "application/octet-stream".into(),
        size: content.len() as u64,
        image: None,
    };
    let record = FileRecord {
        attachment: attachment.clone(),
        owner: "ann".into(),
        created_at: 9,
        place,
        thumb,
    };
    store.add_file(record, path, thumb_path).await.unwrap();
    attachment
}

async fn read_file(store: &dyn Store, id: &str, thumb: bool) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut bytes = store.file_bytes(id, thumb).await.unwrap().expect("stored");
    let mut all = Vec::new();
    while let Some(piece) = bytes.next().await {
        all.extend_from_slice(&piece.unwrap());
    }
    all
}

fn hook(id: &str, room: &str, name: &str, secret_hash: &str) -> NewHook {
    NewHook {
        id: id.into(),
        room: room.into(),
        name: name.into(),
        secret_hash: secret_hash.into(),
        created_by: "ann".into(),
    }
}

fn bot_post(room: &str, bot: &str, text: &str) -> NewPost {
    NewPost::Room {
        room: room.into(),
        sender: bot.into(),
        text: text.into(),
        key: None,
        bot: true,
        reply_to: None,
        files: Vec::new(),
    }
}

/// Bots have no password and tokens that never expire; a webhook makes its bot a member of
/// its room; a bot's messages say so in history; a deleted webhook is gone, its bot stays.
async fn bots_and_webhooks(fresh: &Fresh) {
    let store = fresh.store.as_ref();
    store.create_user("ann", "hash-a", 1, &OPEN).await.unwrap();
    store.create_room("dev", "ann", 2, false).await.unwrap();
    assert_eq!(store.room_owner("dev").await.unwrap().as_deref(), Some("ann"));
    assert_eq!(store.room_owner(LOBBY).await.unwrap(), None);
    assert!(matches!(store.room_owner("nowhere").await, Err(StoreError::NotFound(_))));

    store.create_bot("deployer", 3).await.unwrap();
    assert_eq!(store.is_bot("deployer").await.unwrap(), Some(true));
    assert_eq!(store.is_bot("ann").await.unwrap(), Some(false));
    assert_eq!(store.is_bot("nobody").await.unwrap(), None);
    assert!(matches!(store.create_bot("ann", 3).await, Err(StoreError::Conflict(_))));
    assert!(!store.is_member(LOBBY, "deployer").await.unwrap(), "a bot joins rooms itself");
    store.store_token("bot-token", "deployer", 3, NEVER, "test").await.unwrap();
    let owner = store.token_owner("bot-token", i64::MAX - 1).await.unwrap().unwrap();
    assert!(owner.bot && owner.user == "deployer");
    store.store_token("ann-token", "ann", 3, 1_000, "test").await.unwrap();
    assert!(!store.token_owner("ann-token", 4).await.unwrap().unwrap().bot);

    store.create_webhook(hook("h1", "dev", "ci", "secret-1"), 5).await.unwrap();
    assert!(store.is_member("dev", "ci").await.unwrap());
    // The bot's name is taken, by the webhook or anyone: nothing of the second one stays.
    let taken = store.create_webhook(hook("h2", "dev", "ann", "secret-2"), 6).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let no_room = store.create_webhook(hook("h3", "nowhere", "ci2", "secret-3"), 6).await;
    assert!(matches!(no_room, Err(StoreError::NotFound(_))), "{no_room:?}");
    assert!(!store.user_exists("ci2").await.unwrap(), "all or nothing");
    let listed = store.webhooks("dev").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].name.as_str(), listed[0].created_by.as_str()),
        ("h1", "ci", "ann")
    );
    assert!(listed[0].path.is_none(), "no secret in a listing");
    assert_eq!(store.webhook("secret-1").await.unwrap().unwrap().id, "h1");
    assert!(store.webhook("secret-2").await.unwrap().is_none());

    post_one(store, bot_post("dev", "ci", "build green")).await.unwrap();
    post_one(store, room_post("dev", "ann", "thanks", None)).await.unwrap();
    let history = store.room_before("dev", None, 10).await.unwrap();
    let flags: Vec<(&str, bool)> = history.iter().map(|m| (m.text.as_str(), m.bot)).collect();
    assert_eq!(flags, [("build green", true), ("thanks", false)]);
    store.create_user("bob", "hash-b", 7, &OPEN).await.unwrap();
    let dm = NewPost::Dm {
        from: "ci".into(),
        to: "bob".into(),
        text: "hi".into(),
        key: None,
        bot: true,
        files: Vec::new(),
    };
    post_one(store, dm).await.unwrap();
    assert!(store.inbox_after("bob", 0, 10).await.unwrap()[0].bot);

    assert!(store.delete_webhook("dev", "h1").await.unwrap());
    assert!(!store.delete_webhook("dev", "h1").await.unwrap());
    assert!(store.webhook("secret-1").await.unwrap().is_none());
    assert!(store.user_exists("ci").await.unwrap(), "the bot and its messages stay");
}
